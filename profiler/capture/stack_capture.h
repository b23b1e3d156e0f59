// In-process stack capture: the agent signals each thread with a free real-time signal; the
// handler unwinds its own stack with libunwind into memory the agent prepared, and the agent
// collects the addresses. Symbolizing is someone else's job (Symbolizer), on the agent's thread.
//
// Threading: install() once, capture() from one thread at a time (serialized internally).
// The signal handler itself follows the agent's hard rules: async-signal-safe, no allocation,
// no locks; a thread that never runs it (signal blocked, stopped) times out, nothing waits longer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "profiler/thread_stacks.h"

namespace periscope {

struct CapturedStack {
  // kNotSignalled: it would not have run our handler (the host replaced the handler, or the thread
  // blocks the signal), so it was never sent; another way (ptrace) may still read the stack.
  enum class Status { kOk, kTimedOut, kExited, kNotSignalled };
  pid_t tid = 0;
  Status status = Status::kOk;
  std::vector<uint64_t> pcs;  // innermost first; pcs[0] is the interrupted pc, the rest return addresses
  bool truncated = false;     // deeper than the depth limit
  std::string detail;         // why not kOk, in words
};

class StackCapture {
 public:
  // Installs the handler on `signal` (0: the first free real-time signal from SIGRTMIN+8).
  // Refuses a signal that already has a handler. Empty on success, else why not.
  [[nodiscard]] static std::string install(int signal);
  static int signal_number();  // 0 while not installed
  // Gives the signal back (the default action again, nothing queued); install() may take it anew.
  // The agent's thread, with no capture running (an ejected agent).
  static void uninstall();
  // Captures the stacks of `tids` of this process, all at once; each thread gets `timeout` to answer.
  static std::vector<CapturedStack> capture(const std::vector<pid_t>& tids, std::chrono::milliseconds timeout,
                                            size_t max_depth = kMaxStackDepth);
  // From a crash handler (async-signal-safe: no allocation, no lock; a capture in progress at the
  // crash is abandoned to its own memory). Signals up to kCrashThreads of `tids` at once, waits
  // up to `timeout_ms` for all of them, then calls each(arg, tid, pcs, depth, truncated) per
  // thread in `tids` order, depth 0 for one that did not answer. False if capture is not installed.
  static constexpr size_t kCrashThreads = 64;
  static constexpr size_t kCrashDepth = 48;
  using CrashStackFn = void (*)(void* arg, pid_t tid, const uint64_t* pcs, size_t depth, bool truncated);
  static bool capture_for_crash(const pid_t* tids, size_t n, int timeout_ms, CrashStackFn each, void* arg);
  // What every capture so far did, per thread asked (for metrics; read from any thread).
  struct Counters {
    uint64_t signals_sent = 0;
    uint64_t captured = 0;
    uint64_t timed_out = 0;  // no answer in time: thread stopped, capture abandoned
    uint64_t not_signalled = 0;  // the handler was replaced or the thread blocks the signal
  };
  static Counters counters();
  // In a fork child (one thread): forget any capture the parent's agent thread was in the middle
  // of, including a lock it held. The signal handler stays installed.
  static void reset_in_fork_child();
};

}  // namespace periscope
