#include "profiler/remote_stacks.h"

#include <algorithm>
#include <cstring>
#include <elfutils/libdwfl.h>
#include <map>

#include "profiler/proc_reader.h"
#include "profiler/thread_list.h"

namespace periscope {

namespace {

char* g_debuginfo_path = nullptr;
const Dwfl_Callbacks kCallbacks = {dwfl_linux_proc_find_elf, dwfl_build_id_find_debuginfo, nullptr,
                                   &g_debuginfo_path};

struct Walk {
  const std::vector<pid_t>* only;
  size_t max_depth;
  std::map<pid_t, std::vector<RawFrame>> frames;
  std::map<pid_t, std::string> errors;
  std::map<pid_t, bool> truncated;
  pid_t current = 0;
};

int on_frame(Dwfl_Frame* frame, void* arg) {
  auto* walk = static_cast<Walk*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  auto& frames = walk->frames[walk->current];
  if (frames.size() == walk->max_depth) {
    walk->truncated[walk->current] = true;
    return DWARF_CB_ABORT;
  }
  frames.push_back({pc, !activation});
  return DWARF_CB_OK;
}

int on_thread(Dwfl_Thread* thread, void* arg) {
  auto* walk = static_cast<Walk*>(arg);
  pid_t tid = dwfl_thread_tid(thread);
  if (!walk->only->empty() && std::find(walk->only->begin(), walk->only->end(), tid) == walk->only->end()) {
    return DWARF_CB_OK;
  }
  walk->current = tid;
  walk->frames[tid];
  // The end of every stack is an "error" to libdwfl; it matters only when nothing was unwound.
  if (dwfl_thread_getframes(thread, on_frame, walk) != 0 && walk->frames[tid].empty()) {
    walk->errors[tid] = std::string("cannot unwind: ") + dwfl_errmsg(-1);
  }
  return DWARF_CB_OK;
}

std::string ptrace_denied_hint(pid_t pid) {
  std::string scope = "?";
  if (auto s = proc::read_file("/proc/sys/kernel/yama/ptrace_scope", 16)) scope = s->substr(0, s->find('\n'));
  return "not permitted to ptrace process " + std::to_string(pid) + " (kernel.yama.ptrace_scope=" + scope +
         "): run periscope as root or as the process's user with ptrace_scope 0, or start the process "
         "with the agent (LD_PRELOAD=libperiscope.so)";
}

}  // namespace

RemoteStacks capture_remote_stacks(pid_t pid, const std::vector<pid_t>& only, size_t max_depth) {
  RemoteStacks result;
  auto threads = list_threads(pid);  // names and states before we stop anybody
  if (threads.empty()) {
    result.error = "no process with PID " + std::to_string(pid);
    return result;
  }
  Dwfl* dwfl = dwfl_begin(&kCallbacks);
  if (!dwfl) {
    result.error = std::string("libdwfl: ") + dwfl_errmsg(-1);
    return result;
  }
  Walk walk{&only, max_depth, {}, {}, {}, 0};
  int reported = dwfl_linux_proc_report(dwfl, pid);
  dwfl_report_end(dwfl, nullptr, nullptr);
  int attached = reported == 0 ? dwfl_linux_proc_attach(dwfl, pid, false) : reported;
  if (attached != 0) {
    result.permission_denied = attached == EPERM || attached == EACCES;
    result.error = result.permission_denied
                       ? ptrace_denied_hint(pid)
                       : "cannot attach to process " + std::to_string(pid) + ": " +
                             (attached > 0 ? std::strerror(attached) : dwfl_errmsg(-1));
    dwfl_end(dwfl);
    return result;
  }
  if (dwfl_getthreads(dwfl, on_thread, &walk) != 0 && walk.frames.empty()) {
    std::string why = dwfl_errmsg(-1);
    result.permission_denied = why.find("not permitted") != std::string::npos;
    result.error = result.permission_denied ? ptrace_denied_hint(pid) : "cannot read threads: " + why;
  }
  dwfl_end(dwfl);  // detaches: every thread runs again before we symbolize
  if (!result.error.empty()) return result;

  Symbolizer symbolizer(pid);
  for (const auto& t : threads) {
    if (!only.empty() && std::find(only.begin(), only.end(), t.tid) == only.end()) continue;
    ThreadStack s{t.tid, t.name, proc::state_name(t.state), {}, walk.truncated[t.tid], {}, {}, {}};
    auto frames = walk.frames.find(t.tid);
    if (frames == walk.frames.end()) s.error = "exited during capture";
    else if (walk.errors.count(t.tid)) s.error = walk.errors[t.tid];
    else s.frames = symbolize_frames(frames->second, symbolizer);
    result.stacks.push_back(std::move(s));
  }
  for (pid_t wanted : only) {
    if (std::none_of(threads.begin(), threads.end(), [&](const ThreadInfo& t) { return t.tid == wanted; })) {
      result.stacks.push_back({wanted, "", "", {}, false, "no such thread in process " + std::to_string(pid)});
    }
  }
  return result;
}

}  // namespace periscope
