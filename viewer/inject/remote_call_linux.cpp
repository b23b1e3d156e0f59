#include "viewer/inject/remote_call.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "profiler/proc_reader.h"

#if !defined(__x86_64__)
#error "periscope inject supports x86-64 only"
#endif

namespace periscope::viewer {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kRedZone = 128;              // the System V ABI's: the thread's own, never touched
constexpr uint64_t kReturnAddress = 0;          // the call returns here: a fault we stop at
constexpr size_t kXstateBytes = 16 * 1024;      // xsave area (AVX-512 needs ~2.7 KiB)

uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// Every signal blocked during our calls but the faults (blocking those would make the kernel
// reset their handlers when one happens).
uint64_t call_signal_mask() { return ~(bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP)); }

struct Stop {
  enum Kind { kTimeout, kGone, kEvent, kSignal } kind = kTimeout;
  int signal = 0;
};

Stop wait_for_stop(pid_t tid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return {Stop::kGone, 0};
    if (r == tid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) return {Stop::kGone, 0};
      if (WIFSTOPPED(status)) {
        if ((status >> 16) == PTRACE_EVENT_STOP) return {Stop::kEvent, WSTOPSIG(status)};
        return {Stop::kSignal, WSTOPSIG(status)};
      }
      continue;
    }
    if (Clock::now() >= deadline) return {Stop::kTimeout, 0};
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

struct TracedThread::State {
  pid_t pid = 0;
  pid_t tid = 0;
  bool seized = false;
  bool stopped = false;  // in a ptrace-stop of ours: an event stop, harmless if we vanish
  bool in_call = false;
  bool denied = false;
  int mem_fd = -1;
  user_regs_struct saved{};
  std::vector<uint8_t> xstate;  // NT_X86_XSTATE; empty where unavailable (then fpregs)
  user_fpregs_struct fpregs{};
  uint64_t saved_mask = 0;
  uint64_t scratch = 0;  // lowest byte handed out by push_bytes; calls start below it
  uint64_t call_sp = 0;  // rsp at the call's entry: the return trap must find it + 8
  std::vector<int> held_signals;  // arrived between our calls: sent again when it goes
  Clock::time_point stopped_at{};
  Clock::time_point resumed_at{};

  bool save();
  bool restore(bool for_call);
  bool put_back() { return ::ptrace(PTRACE_SETREGS, tid, nullptr, &saved) == 0 && restore(false); }
  std::string park();
};

// The thread's registers, vector state and signal mask, as it stopped.
bool TracedThread::State::save() {
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0) return false;
  xstate.assign(kXstateBytes, 0);
  iovec iov{xstate.data(), xstate.size()};
  if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) == 0) {
    xstate.resize(iov.iov_len);
  } else {
    xstate.clear();  // no XSAVE (noxsave, some VMs): x87 and SSE state only
    if (::ptrace(PTRACE_GETFPREGS, tid, nullptr, &fpregs) != 0) return false;
  }
  return ::ptrace(PTRACE_GETSIGMASK, tid, reinterpret_cast<void*>(sizeof saved_mask), &saved_mask) == 0;
}

// Puts the saved vector state and signal mask back (put_back: the registers too); `for_call`: a clean floating-point
// environment instead (the code we call must not inherit unmasked exceptions or a full x87
// stack), and every signal but the faults blocked.
bool TracedThread::State::restore(bool for_call) {
  std::vector<uint8_t> x = xstate;
  user_fpregs_struct fp = fpregs;
  if (for_call) {
    // The legacy FXSAVE area both layouts start with: FCW, FSW, abridged FTW, ..., MXCSR at 24.
    uint8_t* legacy = x.empty() ? reinterpret_cast<uint8_t*>(&fp) : x.data();
    const uint16_t fcw = 0x37f, fsw = 0;
    const uint32_t mxcsr = 0x1f80;
    std::memcpy(legacy, &fcw, 2);
    std::memcpy(legacy + 2, &fsw, 2);
    legacy[4] = 0;  // every x87 register empty
    std::memcpy(legacy + 24, &mxcsr, 4);
  }
  iovec iov{x.data(), x.size()};
  const bool vectors = x.empty() ? ::ptrace(PTRACE_SETFPREGS, tid, nullptr, &fp) == 0
                                 : ::ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) == 0;
  uint64_t mask = for_call ? call_signal_mask() : saved_mask;
  const bool masked = ::ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof mask), &mask) == 0;
  return vectors && masked;
}

// After a call returned (the thread is in the delivery-stop of our return trap's fault): the
// thread's own state back, and that stop turned into an event stop. Were the viewer to die now,
// the kernel would deliver the pending fault and kill the host; from an event stop it simply
// goes on where it was.
std::string TracedThread::State::park() {
  if (!put_back()) {
    return std::string("cannot restore the thread's registers: ") + std::strerror(errno);
  }
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 || ::ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) {
    return std::string("cannot park the thread: ") + std::strerror(errno);
  }
  for (;;) {
    const Stop stop = wait_for_stop(tid, Clock::now() + std::chrono::seconds(5));
    if (stop.kind == Stop::kEvent) return {};
    if (stop.kind == Stop::kGone) {
      stopped = seized = false;
      return "the thread ended";
    }
    if (stop.kind == Stop::kTimeout) return "the thread did not stop again";
    held_signals.push_back(stop.signal);  // rare: only between two calls is the mask the host's
    if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) return std::string("PTRACE_CONT: ") + std::strerror(errno);
  }
}

TracedThread::TracedThread(pid_t pid, pid_t tid) : s_(std::make_unique<State>()) {
  s_->pid = pid;
  s_->tid = tid;
}

TracedThread::~TracedThread() {
  State& s = *s_;
  if (s.stopped && !s.in_call) {
    (void)resume();
  } else if (s.seized && !s.stopped) {
    // Asked to stop but not stopped yet (uninterruptible sleep, a frozen cgroup): detaching needs
    // a stop. A moment's wait; otherwise the kernel lets it go when this process ends.
    if (wait_for_stop(s.tid, Clock::now() + std::chrono::milliseconds(100)).kind == Stop::kEvent) {
      ::ptrace(PTRACE_DETACH, s.tid, nullptr, nullptr);
    }
  }
  if (s.mem_fd >= 0) ::close(s.mem_fd);
}

std::string TracedThread::stop(std::chrono::milliseconds timeout) {
  State& s = *s_;
  if (::ptrace(PTRACE_SEIZE, s.tid, nullptr, nullptr) != 0) {
    const int err = errno;
    s.denied = err == EPERM || err == EACCES;
    return ptrace_refusal(s.pid, err);
  }
  s.seized = true;
  if (::ptrace(PTRACE_INTERRUPT, s.tid, nullptr, nullptr) != 0) {
    return "cannot interrupt thread " + std::to_string(s.tid) + ": " + std::strerror(errno);
  }
  const Stop stop = wait_for_stop(s.tid, Clock::now() + timeout);
  if (stop.kind == Stop::kGone) {
    s.seized = false;
    return "thread " + std::to_string(s.tid) + " ended";
  }
  if (stop.kind == Stop::kTimeout) {
    return "thread " + std::to_string(s.tid) + " did not stop within " + std::to_string(timeout.count()) +
           " ms (uninterruptible sleep, or a frozen process?)";
  }
  if (stop.kind == Stop::kSignal) {
    // A signal on its way to the thread came first: let it go with it, untouched (its siginfo
    // kept), and choose another time or thread.
    ::ptrace(PTRACE_DETACH, s.tid, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(stop.signal)));
    s.seized = false;
    return "thread " + std::to_string(s.tid) + " was receiving signal " + std::to_string(stop.signal);
  }
  s.stopped = true;
  s.stopped_at = Clock::now();
  if (!s.save()) return std::string("cannot read the thread's registers: ") + std::strerror(errno);
  s.mem_fd = ::open(("/proc/" + std::to_string(s.tid) + "/mem").c_str(), O_RDWR | O_CLOEXEC);
  if (s.mem_fd < 0) return std::string("cannot open the process's memory: ") + std::strerror(errno);
  s.scratch = (s.saved.rsp - kRedZone) & ~uint64_t{15};
  return {};
}

long TracedThread::syscall_number() const { return static_cast<long>(s_->saved.orig_rax); }
uint64_t TracedThread::pc() const { return s_->saved.rip; }
uint64_t TracedThread::sp() const { return s_->saved.rsp; }
bool TracedThread::denied() const { return s_->denied; }

uint64_t TracedThread::push_bytes(const void* data, size_t size) {
  State& s = *s_;
  s.scratch = (s.scratch - size) & ~uint64_t{15};
  if (::pwrite(s.mem_fd, data, size, static_cast<off_t>(s.scratch)) != static_cast<ssize_t>(size)) return 0;
  return s.scratch;
}

std::string TracedThread::read_string(uint64_t address, size_t max_size) {
  std::string out(max_size, '\0');
  ssize_t n = ::pread(s_->mem_fd, out.data(), max_size, static_cast<off_t>(address));
  if (n <= 0) return {};
  out.resize(static_cast<size_t>(n));
  return out.substr(0, out.find('\0'));
}

std::string TracedThread::call(uint64_t function, const std::vector<uint64_t>& args, uint64_t* result,
                               std::chrono::milliseconds timeout) {
  State& s = *s_;
  if (!s.stopped || s.in_call) return "the thread is not stopped";
  if (args.size() > 6) return "too many arguments";
  user_regs_struct r = s.saved;
  unsigned long long* slots[] = {&r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9};
  for (size_t i = 0; i < args.size(); ++i) *slots[i] = args[i];
  r.rip = function;
  r.rax = 0;
  r.orig_rax = ~uint64_t{0};  // not in a system call: the kernel must not "restart" our call
  r.eflags &= ~uint64_t{0x400};  // DF clear, as the ABI promises a callee
  // At a function's entry rsp + 8 is 16-byte aligned: the return address is the 8.
  s.call_sp = ((s.scratch - 256) & ~uint64_t{15}) - 8;
  const uint64_t ret = kReturnAddress;
  if (::pwrite(s.mem_fd, &ret, sizeof ret, static_cast<off_t>(s.call_sp)) != sizeof ret) {
    return std::string("cannot write the thread's stack: ") + std::strerror(errno);
  }
  r.rsp = s.call_sp;
  if (::ptrace(PTRACE_SETREGS, s.tid, nullptr, &r) != 0 || !s.restore(true)) {
    const std::string err = std::string("cannot set the thread's registers: ") + std::strerror(errno);
    (void)s.park();
    return err;
  }
  if (::ptrace(PTRACE_CONT, s.tid, nullptr, nullptr) != 0) return std::string("PTRACE_CONT: ") + std::strerror(errno);
  s.in_call = true;
  return finish_call(result, timeout);
}

std::string TracedThread::finish_call(uint64_t* result, std::chrono::milliseconds timeout) {
  State& s = *s_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const Stop stop = wait_for_stop(s.tid, deadline);
    if (stop.kind == Stop::kTimeout) return "the call did not return within " + std::to_string(timeout.count()) + " ms";
    if (stop.kind == Stop::kGone) {
      s.in_call = s.stopped = s.seized = false;
      return "the process ended during the call";
    }
    if (stop.kind == Stop::kSignal) {
      siginfo_t info{};
      const bool synchronous = ::ptrace(PTRACE_GETSIGINFO, s.tid, nullptr, &info) == 0 && info.si_code > 0;
      if (synchronous) {  // a fault of the thread itself: our return trap, or a real one
        user_regs_struct now{};
        ::ptrace(PTRACE_GETREGS, s.tid, nullptr, &now);
        s.in_call = false;
        const bool returned = stop.signal == SIGSEGV && info.si_addr == nullptr && now.rip == kReturnAddress &&
                              now.rsp == s.call_sp + 8;
        const std::string parked = s.park();
        if (!returned) {
          return "the call faulted (signal " + std::to_string(stop.signal) + " at pc " + hex(now.rip) +
                 "); the thread was put back where it was, but what the call had done so far (locks it "
                 "took) stays: the process may not be sound";
        }
        if (!parked.empty()) return parked;
        *result = now.rax;
        return {};
      }
      s.held_signals.push_back(stop.signal);  // SIGSTOP: the rest are blocked during the call
    }
    if (::ptrace(PTRACE_CONT, s.tid, nullptr, nullptr) != 0) return std::string("PTRACE_CONT: ") + std::strerror(errno);
  }
}

bool TracedThread::call_in_progress() const { return s_->in_call; }

std::string TracedThread::resume() {
  State& s = *s_;
  if (!s.stopped) return {};
  if (s.in_call) return "a call is in progress";
  std::string err;
  if (!s.put_back()) {
    err = std::string("cannot restore the thread's registers: ") + std::strerror(errno);
  }
  if (::ptrace(PTRACE_DETACH, s.tid, nullptr, nullptr) != 0 && err.empty()) {
    err = std::string("PTRACE_DETACH: ") + std::strerror(errno);
  }
  for (int sig : s.held_signals) ::syscall(SYS_tgkill, s.pid, s.tid, sig);
  s.held_signals.clear();
  s.stopped = false;
  s.seized = false;
  s.resumed_at = Clock::now();
  return err;
}

std::chrono::microseconds TracedThread::stopped_for() const {
  if (s_->stopped_at == Clock::time_point{}) return std::chrono::microseconds(0);
  const auto end = s_->stopped ? Clock::now() : s_->resumed_at;
  return std::chrono::duration_cast<std::chrono::microseconds>(end - s_->stopped_at);
}

std::string ptrace_refusal(pid_t pid, int err) {
  const std::string who = "process " + std::to_string(pid);
  if (err == ESRCH) return "no process with PID " + std::to_string(pid);
  if (err != EPERM && err != EACCES) return "cannot ptrace " + who + ": " + std::strerror(err);
  const std::string status = proc::read_file("/proc/" + std::to_string(pid) + "/status", 1 << 16).value_or("");
  const size_t tracer_at = status.find("TracerPid:");
  const long tracer = tracer_at == std::string::npos ? 0 : std::strtol(status.c_str() + tracer_at + 10, nullptr, 10);
  if (tracer == ::getpid()) {
    return "a thread of " + who + " did not stop when asked (uninterruptible sleep, or a frozen process?)";
  }
  if (tracer > 0) {
    return who + " is already traced by PID " + std::to_string(tracer) +
           " (a debugger?): a process has one tracer at a time; detach it and try again";
  }
  std::string scope = proc::read_file("/proc/sys/kernel/yama/ptrace_scope", 16).value_or("0");
  scope = scope.substr(0, scope.find('\n'));
  struct stat st {};
  const bool other_user = ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0 && st.st_uid != ::geteuid();
  if (scope == "3") return "ptrace is disabled on this machine (kernel.yama.ptrace_scope=3, only a reboot lowers it)";
  if (other_user && ::geteuid() != 0) {
    return who + " belongs to uid " + std::to_string(st.st_uid) + ": run periscope as that user or as root";
  }
  if (scope == "2") return "kernel.yama.ptrace_scope=2 allows ptrace only with CAP_SYS_PTRACE: run periscope as root";
  if (scope == "1") {
    return "kernel.yama.ptrace_scope=1 lets a process be traced only by its ancestors: run periscope as root "
           "(CAP_SYS_PTRACE) or set kernel.yama.ptrace_scope=0";
  }
  return "not permitted to ptrace " + who + " (it may be undumpable, or need CAP_SYS_PTRACE): run periscope as root";
}

}  // namespace periscope::viewer
