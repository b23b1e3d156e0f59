// sigaction() and signal() as the host calls them, seen before they take effect. Daemons reset every
// disposition after start and hosts install handlers of their own; when that hits a signal
// periscope is using, the kernel may already be about to send it (a perf event's overflow, a CPU
// timer) and a real-time signal at SIG_DFL kills the process. So, on the host's thread and before
// its change: the signal's sources are stopped and its sends in flight waited for
// (profiler/signal_delivery.h), what is queued is dropped (SIG_IGN for a moment), then the host's
// action is installed and it gets back the one it replaced. The host always wins: periscope stops
// using the signal and says so (`stacks`, `record`), it never takes it back.
//
// Exported from libperiscope.so (exports.map), so they interpose for the whole process when the
// agent is preloaded or linked. Calls that are not about a guarded signal pass straight through.
// Not built with ThreadSanitizer: its runtime calls the next sigaction in the process (ours)
// from its own initialisation, before any constructor, where dlsym crashes it; and TSan keeps
// the process's handlers itself, so the host's changes never reach the kernel as such.
// async-signal-safe (hosts call sigaction in handlers): atomics, ioctl, timer_settime and the
// next sigaction; the next functions are resolved at load, before main.
#include <cerrno>
#include <csignal>
#include <dlfcn.h>

#include "profiler/signal_delivery.h"

#if !defined(__SANITIZE_THREAD__)

namespace {

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t (*)(int, sighandler_t);

SigactionFn g_next_sigaction = nullptr;
SignalFn g_next_signal = nullptr;

// dlsym allocates: done at load (and again if a constructor ran before ours and called in).
void resolve_next() {
  if (!g_next_sigaction) g_next_sigaction = reinterpret_cast<SigactionFn>(::dlsym(RTLD_NEXT, "sigaction"));
  if (!g_next_signal) g_next_signal = reinterpret_cast<SignalFn>(::dlsym(RTLD_NEXT, "signal"));
}

__attribute__((constructor(101))) void resolve_at_load() { resolve_next(); }

// async-signal-safe: drops every queued instance of `sig`; returns the action that was installed.
struct sigaction drop_queued(int sig) {
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  g_next_sigaction(sig, &ignore, &previous);
  return previous;
}

// async-signal-safe: the host is taking `sig` from periscope. Stops what sends it, drops what is
// queued and, if a source was running, waits out a signal it still has under way (ignored, it is
// discarded). Returns the action that was installed; `sig` is left ignored until the caller sets it.
struct sigaction take_from_periscope(int sig) {
  const bool silenced = periscope::before_host_takes(sig);
  struct sigaction previous = drop_queued(sig);
  if (silenced) periscope::let_late_signals_be_discarded();
  return previous;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction* action,
                                                                struct sigaction* old) noexcept {
  resolve_next();
  if (!action) return g_next_sigaction(sig, action, old);
  const bool siginfo = (action->sa_flags & SA_SIGINFO) != 0;
  if (!periscope::host_takes_signal(sig, siginfo ? action->sa_sigaction : nullptr, action->sa_flags)) {
    const int r = g_next_sigaction(sig, action, old);
    const int saved_errno = errno;
    if (r == 0 && siginfo) periscope::host_restored(sig);  // no-op unless it put periscope's handler back
    errno = saved_errno;
    return r;
  }
  const int saved_errno = errno;  // the hook's own calls must not show in the host's errno
  struct sigaction previous = take_from_periscope(sig);
  errno = saved_errno;
  const int r = g_next_sigaction(sig, action, nullptr);
  if (r != 0) {
    const int refused = errno;
    g_next_sigaction(sig, &previous, nullptr);  // refused (bad flags): as it was, periscope's again
    periscope::host_restored(sig);
    errno = refused;
    return r;
  }
  if (old) *old = previous;
  errno = saved_errno;
  return 0;
}

extern "C" __attribute__((visibility("default"))) sighandler_t signal(int sig, sighandler_t handler) noexcept {
  resolve_next();
  if (!periscope::host_takes_signal(sig, nullptr, 0)) return g_next_signal(sig, handler);
  const int saved_errno = errno;
  struct sigaction previous = take_from_periscope(sig);
  errno = saved_errno;
  if (g_next_signal(sig, handler) == SIG_ERR) {
    const int refused = errno;
    g_next_sigaction(sig, &previous, nullptr);
    periscope::host_restored(sig);
    errno = refused;
    return SIG_ERR;
  }
  errno = saved_errno;
  return previous.sa_handler;  // the union's other member for a SA_SIGINFO handler, as signal() gives it
}

#endif
