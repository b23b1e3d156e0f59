#include "profiler/signal_delivery.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <sched.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profiler/proc_reader.h"

namespace periscope {

namespace {

// The bit of `sig` in a /proc status mask line ("SigBlk:\t0000000000000000").
bool mask_has(const std::string& status, const char* key, int sig) {
  auto pos = status.find(key);
  if (pos == std::string::npos) return false;
  unsigned long long mask = std::strtoull(status.c_str() + pos + std::strlen(key), nullptr, 16);
  return (mask >> (sig - 1)) & 1ULL;
}

struct Guarded {
  std::atomic<int> sig{0};
  std::atomic<SignalHandler> handler{nullptr};
  std::atomic<bool (*)()> silence{nullptr};
  std::atomic<bool> taken{false};
  std::atomic<int> sends_in_flight{0};
};
constexpr int kMaxGuarded = 4;
Guarded g_guarded[kMaxGuarded];
// The process whose agent guards these signals. A fork child (or a vfork child, which shares this
// memory) has no perf event or timer of ours sending it anything and no agent thread: until its own
// agent adopts the guards, its changes pass straight through and write nothing here.
std::atomic<pid_t> g_guard_pid{0};

bool guards_are_ours() { return ::getpid() == g_guard_pid.load(); }

// async-signal-safe: a scan of a fixed array.
Guarded* guarded(int sig) {
  for (auto& g : g_guarded) {
    if (sig > 0 && g.sig.load() == sig) return &g;
  }
  return nullptr;
}

__attribute__((tls_model("initial-exec"))) thread_local bool t_agent_changes_signals = false;

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);

// The first sigaction in the process's scope: a sanitizer's interceptor if one runs, else the
// agent's interposer or libc's. Resolved once, on the agent's thread (dlsym allocates).
SigactionFn first_sigaction() {
  static SigactionFn first = [] {
    auto f = reinterpret_cast<SigactionFn>(::dlsym(RTLD_DEFAULT, "sigaction"));
    return f ? f : &::sigaction;
  }();
  return first;
}

}  // namespace

// async-signal-safe: sched_yield, then nanosleep (a SCHED_FIFO caller on the in-flight thread's
// CPU would never let it run by yielding).
void wait_for_zero(const std::atomic<int>& in_flight) {
  for (int spins = 0; in_flight.load() != 0; ++spins) {
    if (spins < 1000) {
      ::sched_yield();
    } else {
      const timespec pause{0, 20000};
      ::nanosleep(&pause, nullptr);
    }
  }
}

int agent_sigaction(int sig, const struct sigaction* action, struct sigaction* old) {
  const bool was = t_agent_changes_signals;
  t_agent_changes_signals = true;
  const int r = first_sigaction()(sig, action, old);
  t_agent_changes_signals = was;
  return r;
}

void guard_signal(int sig, SignalHandler handler, bool (*silence)()) {
  (void)first_sigaction();  // resolved here, never first in a host's handler
  Guarded* g = guarded(sig);
  for (int i = 0; !g && i < kMaxGuarded; ++i) {
    int free_slot = 0;
    if (g_guarded[i].sig.compare_exchange_strong(free_slot, sig)) g = &g_guarded[i];
  }
  if (!g) return;
  g->handler.store(handler);
  g->silence.store(silence);
  g->taken.store(false);
  g_guard_pid.store(::getpid());
}

void adopt_signal_guards_in_fork_child() {
  if (g_guard_pid.load() == 0) return;
  for (auto& g : g_guarded) {
    if (g.sends_in_flight.load() != 0) g.sends_in_flight.store(0);  // the parent's threads' sends
  }
  g_guard_pid.store(::getpid());
}

// async-signal-safe: atomics.
bool begin_guarded_send(int sig) {
  Guarded* g = guarded(sig);
  if (!g) return true;
  g->sends_in_flight.fetch_add(1);
  if (!g->taken.load()) return true;
  g->sends_in_flight.fetch_sub(1);
  errno = EPERM;
  return false;
}

// async-signal-safe: an atomic decrement.
void end_guarded_send(int sig) {
  if (Guarded* g = guarded(sig)) g->sends_in_flight.fetch_sub(1);
}

void wait_for_guarded_sends(int sig) {
  if (Guarded* g = guarded(sig)) wait_for_zero(g->sends_in_flight);
}

// async-signal-safe: atomics and tgkill.
bool send_guarded(pid_t pid, pid_t tid, int sig) {
  if (!begin_guarded_send(sig)) return false;
  const bool sent = ::syscall(SYS_tgkill, pid, tid, sig) == 0;
  const int saved_errno = errno;
  end_guarded_send(sig);
  errno = saved_errno;
  return sent;
}

// async-signal-safe: an atomic load.
bool taken_by_host(int sig) {
  Guarded* g = guarded(sig);
  return g && g->taken.load();
}

// async-signal-safe: a thread-local flag, atomics, getpid.
bool host_takes_signal(int sig, SignalHandler handler, int flags) {
  if (t_agent_changes_signals) return false;
  Guarded* g = guarded(sig);
  // Taken already: nothing of ours sends it any more, and the host's own queued signals are its own.
  if (!g || g->taken.load() || !guards_are_ours()) return false;
  return !((flags & SA_SIGINFO) && handler == g->handler.load());
}

// async-signal-safe: the silencer (ioctl, timer_settime), atomics, sched_yield and nanosleep.
bool before_host_takes(int sig) {
  Guarded* g = guarded(sig);
  if (!g) return false;
  g->taken.store(true);
  wait_for_zero(g->sends_in_flight);  // a send or an arming that passed its check
  auto silence = g->silence.load();
  return silence && silence();
}

// async-signal-safe: nanosleep.
void let_late_signals_be_discarded() {
  const timespec moment{0, 2000000};  // irq_work runs microseconds after an overflow, unless the
  ::nanosleep(&moment, nullptr);      // vCPU is preempted; 2 ms, once per change the host makes
}

// async-signal-safe: an atomic store. Not for the agent's own changes (discard_queued puts the
// handler back after a moment of SIG_IGN: that is no host restoring it).
void host_restored(int sig) {
  if (t_agent_changes_signals) return;
  if (Guarded* g = guarded(sig)) g->taken.store(false);
}

bool handler_installed(int sig, SignalHandler handler) {
  struct sigaction current {};
  return sig > 0 && agent_sigaction(sig, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
         current.sa_sigaction == handler;
}

std::string replaced_handler_words(int sig) {
  struct sigaction current {};
  std::string now = "something else";
  if (agent_sigaction(sig, nullptr, &current) == 0) {
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL) {
      now = "the default action, which would kill the process";
    } else if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) {
      now = "ignored";
    } else {
      now = "a handler of the host's own";
    }
  }
  return "the host replaced periscope's handler for signal " + std::to_string(sig) + " (it is now " + now + ")";
}

std::optional<ThreadSignalState> thread_signal_state(pid_t tid, int sig) {
  auto status = proc::read_file("/proc/self/task/" + std::to_string(tid) + "/status", 8192);
  if (!status) return std::nullopt;
  return ThreadSignalState{mask_has(*status, "SigBlk:", sig),
                           mask_has(*status, "SigPnd:", sig) || mask_has(*status, "ShdPnd:", sig),
                           status->find("State:\tT") != std::string::npos ||
                               status->find("State:\tt") != std::string::npos};
}

long queued_signals_of_uid() {
  auto status = proc::read_file("/proc/self/status", 8192);
  if (!status) return -1;
  auto pos = status->find("SigQ:");
  return pos == std::string::npos ? -1 : std::strtol(status->c_str() + pos + 5, nullptr, 10);
}

bool discard_queued(int sig, SignalHandler handler) {
  // Guarded like a send: a host thread taking the signal now waits for this to finish, so the
  // agent never puts its handler back over the host's.
  if (!begin_guarded_send(sig)) return false;
  struct sigaction ours {};
  bool done = false;
  if (agent_sigaction(sig, nullptr, &ours) == 0 && (ours.sa_flags & SA_SIGINFO) && ours.sa_sigaction == handler) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (agent_sigaction(sig, &ignore, nullptr) == 0) {
      agent_sigaction(sig, &ours, nullptr);
      done = true;
    }
  }
  end_guarded_send(sig);
  return done;
}

// Marked taken first, so no new send or arming starts; then what is queued goes (SIG_IGN discards
// it) and the default action the signal had before the agent took it comes back.
bool release_signal(int sig, SignalHandler handler) {
  Guarded* g = guarded(sig);
  if (g) {
    g->taken.store(true);
    wait_for_zero(g->sends_in_flight);
  }
  struct sigaction current {};
  if (agent_sigaction(sig, nullptr, &current) != 0 || !(current.sa_flags & SA_SIGINFO) ||
      current.sa_sigaction != handler) {
    return false;  // the host has put its own there: it stays
  }
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = SIG_IGN;
  if (agent_sigaction(sig, &action, nullptr) != 0) return false;
  action.sa_handler = SIG_DFL;
  return agent_sigaction(sig, &action, nullptr) == 0;
}

}  // namespace periscope
