#include "viewer/inject/safe_point.h"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "profiler/proc_reader.h"
#include "profiler/thread_list.h"
#include "viewer/inject/remote_symbols.h"

namespace periscope::viewer {

namespace {

using Clock = std::chrono::steady_clock;

// x86-64 system calls that wait for something and are never made with libc's or the loader's
// locks held. futex is not among them: a thread may be waiting for malloc's lock.
const char* waiting_syscall_name(long nr) {
  switch (nr) {
    case 0: return "read";
    case 7: return "poll";
    case 23: return "select";
    case 34: return "pause";
    case 35: return "nanosleep";
    case 43: return "accept";
    case 45: return "recvfrom";
    case 47: return "recvmsg";
    case 61: return "wait4";
    case 70: return "msgrcv";
    case 128: return "rt_sigtimedwait";
    case 130: return "rt_sigsuspend";
    case 208: return "io_getevents";
    case 230: return "clock_nanosleep";
    case 232: return "epoll_wait";
    case 247: return "waitid";
    case 270: return "pselect6";
    case 271: return "ppoll";
    case 281: return "epoll_pwait";
    case 288: return "accept4";
    case 299: return "recvmmsg";
    case 426: return "io_uring_enter";
    case 441: return "epoll_pwait2";
    default: return nullptr;
  }
}

// The system call a thread is blocked in now (/proc/PID/task/TID/syscall), -1 otherwise.
long current_syscall(pid_t pid, pid_t tid) {
  auto text = proc::read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall", 512);
  if (!text || text->empty() || !std::isdigit(static_cast<unsigned char>((*text)[0]))) return -1;
  return std::strtol(text->c_str(), nullptr, 10);
}

std::vector<pid_t> threads_main_first(pid_t pid) {
  std::vector<pid_t> tids;
  for (const auto& t : list_threads(pid)) tids.push_back(t.tid);
  std::stable_partition(tids.begin(), tids.end(), [pid](pid_t t) { return t == pid; });
  return tids;
}

// The mapping that holds `address`.
std::optional<RemoteMapping> region_at(pid_t pid, uint64_t address) {
  for (auto& m : remote_mappings(pid)) {
    if (address >= m.start && address < m.end) return m;
  }
  return std::nullopt;
}

// dlopen and the agent's start run below the thread's stack pointer: a thread with a small stack
// (or deep in recursion) is passed over rather than overflowed. The main stack grows.
constexpr uint64_t kStackRoom = 192 * 1024;
bool has_stack_room(pid_t pid, uint64_t sp) {
  auto region = region_at(pid, sp);
  return region && (region->name == "[stack]" || sp - region->start >= kStackRoom);
}

// User code that cannot be holding libc's, the loader's, the C++ runtime's or an allocator's lock
// right now. libstdc++ holds locks of its own (locale, iostreams, static-init guards, the
// exception pool) and its operator new is where allocating threads spend their time.
bool outside_locking_libraries(const std::string& module) {
  const std::string name = module.substr(module.rfind('/') + 1);
  for (const char* prefix : {"libc.so", "libc-", "ld-linux", "ld-", "libpthread", "libdl", "libgcc_s", "libstdc++",
                             "libc++"}) {
    if (name.rfind(prefix, 0) == 0) return false;
  }
  return name.find("malloc") == std::string::npos && name.find("periscope") == std::string::npos;
}

enum class Kind { kWaiting, kUserCode };

// Stops `tid` and keeps it if it is where `kind` wants it; otherwise lets it go at once. A
// thread that would not stop is not asked again (`unstoppable`).
bool try_thread(pid_t pid, pid_t tid, Kind kind, SafePoint& out, std::set<pid_t>& unstoppable) {
  if (unstoppable.count(tid)) return false;
  auto thread = std::make_unique<TracedThread>(pid, tid);
  std::string err = thread->stop(std::chrono::milliseconds(500));
  if (!err.empty()) {
    out.error = err;
    out.denied = thread->denied();
    if (err.find("did not stop") != std::string::npos) unstoppable.insert(tid);
    return false;
  }
  if (!has_stack_room(pid, thread->sp())) {
    out.error = "thread " + std::to_string(tid) + " has less than 192 KiB of stack left";
  } else if (kind == Kind::kWaiting) {
    if (const char* name = waiting_syscall_name(thread->syscall_number())) {
      out.where = name;
      out.tid = tid;
      out.thread = std::move(thread);
      return true;
    }
  } else if (thread->syscall_number() < 0) {
    const auto region = region_at(pid, thread->pc());
    const std::string module = region ? region->name : std::string();
    if (outside_locking_libraries(module)) {
      out.where = "user code in " + (module.empty() ? std::string("anonymous memory") : module);
      out.tid = tid;
      out.thread = std::move(thread);
      return true;
    }
  }
  (void)thread->resume();
  return false;
}

}  // namespace

SafePoint stop_at_safe_point(pid_t pid, std::chrono::milliseconds wait) {
  SafePoint out;
  std::set<pid_t> unstoppable;
  const auto start = Clock::now();
  const auto deadline = start + wait;
  // Waiting threads are looked for without stopping anybody (/proc); user code needs a stop to
  // see, and is tried once a quarter second (or half the time) found no waiting thread.
  while (Clock::now() < deadline) {
    const auto tids = threads_main_first(pid);
    if (tids.empty()) {
      out.error = "no process with PID " + std::to_string(pid);
      return out;
    }
    for (pid_t tid : tids) {
      if (waiting_syscall_name(current_syscall(pid, tid)) && try_thread(pid, tid, Kind::kWaiting, out, unstoppable)) return out;
      if (out.denied) return out;
    }
    if (Clock::now() - start > std::min<std::chrono::milliseconds>(wait / 2, std::chrono::milliseconds(250))) {
      for (pid_t tid : tids) {
        if (try_thread(pid, tid, Kind::kUserCode, out, unstoppable)) return out;
        if (out.denied) return out;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string last = out.error.empty() ? "" : "; last: " + out.error;
  out.error = "no thread of process " + std::to_string(pid) + " reached a safe point within " +
              std::to_string(wait.count()) +
              " ms (each was inside libc, the dynamic loader or an allocator" + last +
              "); try again, or give --wait more time";
  return out;
}

}  // namespace periscope::viewer
