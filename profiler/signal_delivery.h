// Knowing before signalling: whether a thread of this process will run periscope's handler for a
// signal. Hosts reset every disposition after start (a real-time signal at SIG_DFL kills the
// process), install handlers of their own, and block signals on worker threads (a signal queued to
// such a thread stays queued, against the uid's RLIMIT_SIGPENDING). Whoever sends asks first.
//
// Not for signal handlers unless marked async-signal-safe: the others read /proc and allocate.
// Any thread.
#pragma once

#include <atomic>
#include <csignal>
#include <optional>
#include <string>
#include <sys/types.h>

namespace periscope {

using SignalHandler = void (*)(int, siginfo_t*, void*);

// Whether `handler` is still the action installed for `sig`.
bool handler_installed(int sig, SignalHandler handler);
// Why not, in plain words, for a user: "the host replaced periscope's handler for signal 42 (it
// is now the default action, which would kill the process)".
std::string replaced_handler_words(int sig);

// What /proc/self/task/TID/status says of `sig` for one thread; nullopt when the thread is gone.
struct ThreadSignalState {
  bool blocked = false;  // in SigBlk: a signal sent now would wait, queued
  bool pending = false;  // in SigPnd: one is waiting already
  bool stopped = false;  // State T or t: it runs no handler until it is continued
};
std::optional<ThreadSignalState> thread_signal_state(pid_t tid, int sig);
// The uid-wide count of queued signals (SigQ in /proc/self/status), -1 if unreadable.
long queued_signals_of_uid();

// Drops every queued instance of `sig` in the process (setting SIG_IGN discards them, then the
// handler goes back), if `handler` is still the installed action. True when it did.
bool discard_queued(int sig, SignalHandler handler);

// ---- The host changing a disposition while periscope uses the signal.
// The kernel sends the sampling signal by itself (perf_event, CPU timers), and a check before a
// tgkill can be overtaken by the host's sigaction on another thread: a periodic check leaves a
// window in which a host that resets its dispositions dies. So the agent interposes sigaction()
// and signal() (agent/src/hooks/) and, before the host's change takes effect, stops every source
// of the signal, waits for sends in flight and drops what is queued.

// Registers `sig` as periscope's, its handler, and what stops the kernel sending it (may be null;
// says whether it stopped a running source). Agent's thread, at install. Up to 4 signals.
void guard_signal(int sig, SignalHandler handler, bool (*silence)());
// async-signal-safe. tgkill(pid, tid, sig) unless the host has taken `sig`; false (errno EPERM)
// when it has. A host thread's sigaction waits for a send that passed the check to complete.
bool send_guarded(pid_t pid, pid_t tid, int sig);
// async-signal-safe. The same guard around something else that makes the kernel send `sig` (arming
// a perf event or a CPU timer): begin returns false when the host has taken the signal; a true
// begin must be followed by end once the source is registered where the silencer finds it.
bool begin_guarded_send(int sig);
void end_guarded_send(int sig);
// Waits until no send or arming of `sig` is in flight (the agent's thread, stopping a profile).
void wait_for_guarded_sends(int sig);
// async-signal-safe. Waits until `in_flight` (a count of callers inside some section) is zero.
void wait_for_zero(const std::atomic<int>& in_flight);
// async-signal-safe. Whether the host changed the action of `sig` since the agent installed it.
bool taken_by_host(int sig);

// The interposers' half, on the host's thread (possibly in a handler): async-signal-safe.
// Whether a change of `sig` to `handler`/`flags` by the caller is the host taking a guarded signal
// (not a query, not the agent's own change, not periscope's handler put back).
bool host_takes_signal(int sig, SignalHandler handler, int flags);
// Marks `sig` taken, waits for sends and armings in flight, then stops the sources (the silencer).
// Call before the change. True when a running source was stopped: one that overflowed a moment
// ago may still send (below).
bool before_host_takes(int sig);
// async-signal-safe. After before_host_takes() said true, with `sig` ignored: waits out a signal
// a stopped source has already under way (a perf event's overflow sends it from the kernel's
// irq_work, which on a descheduled vCPU runs late); sent while ignored, it is discarded.
void let_late_signals_be_discarded();
// The host put periscope's handler back (a save-and-restore): the signal is usable again.
void host_restored(int sig);

// In a fork child whose agent starts: the guards are this process's now (sends in flight were the
// parent's threads'). Until then a child's changes pass through untouched.
void adopt_signal_guards_in_fork_child();

// Gives `sig` back (an agent that is ejected): no send starts any more, queued ones are dropped,
// and the action is the default again, as it was when the agent took it. False, touching nothing,
// when the host had replaced `handler`. Call after every source of the signal has stopped.
bool release_signal(int sig, SignalHandler handler);

// The agent's own changes of dispositions go through this (the process's first sigaction, so a
// sanitizer's interceptor sees them as before), marked so that the interposer lets them pass.
int agent_sigaction(int sig, const struct sigaction* action, struct sigaction* old);

}  // namespace periscope
