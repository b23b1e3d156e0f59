// Knowing before signalling: whether a thread of this process will run periscope's handler for a
// signal. Hosts reset every disposition after start (a real-time signal at SIG_DFL kills the
// process), install handlers of their own, and block signals on worker threads (a signal queued to
// such a thread stays queued, against the uid's RLIMIT_SIGPENDING). Whoever sends asks first.
//
// Not for signal handlers: these read /proc and allocate. Any thread.
#pragma once

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

}  // namespace periscope
