// One thread of another process, stopped by ptrace so that we can call functions in that process
// on it (x86-64). Only this thread stops; the process's other threads run on. Everything the
// thread had is saved when it stops and put back exactly when we let it go: general and vector
// registers, signal mask, and a system call it was blocked in (which then restarts as if it had
// taken an ignored signal).
//
// Threading: the viewer's main thread. The tracee is left running if this object is destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::viewer {

class TracedThread {
 public:
  TracedThread(pid_t pid, pid_t tid);
  ~TracedThread();
  TracedThread(const TracedThread&) = delete;
  TracedThread& operator=(const TracedThread&) = delete;

  // PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the stop and saves the thread's state.
  // Empty on success, else why not (ptrace denied, thread gone, another tracer...).
  [[nodiscard]] std::string stop(std::chrono::milliseconds timeout);
  // Where it stopped: the system call it is in (-1 in user code) and its program counter.
  long syscall_number() const;
  bool denied() const;  // stop() failed because ptrace itself was refused
  uint64_t pc() const;
  uint64_t sp() const;

  // Copies bytes into the thread's stack, below the red zone, for the calls that follow; returns
  // their address in the tracee. Before the first call() only.
  uint64_t push_bytes(const void* data, size_t size);
  uint64_t push_string(const std::string& s) { return push_bytes(s.c_str(), s.size() + 1); }
  std::string read_string(uint64_t address, size_t max_size);

  // Calls `function(args...)` (up to 6 integer arguments) on the thread with every signal but the
  // faults blocked and a clean floating-point environment; *result is its return value. Empty on
  // success. Between calls the thread waits in an event stop with its own state back, so that
  // if this process dies the thread simply goes on. A call that does not return within
  // `timeout` is an error, and the thread is then left inside it (finish_call waits again).
  [[nodiscard]] std::string call(uint64_t function, const std::vector<uint64_t>& args, uint64_t* result,
                                 std::chrono::milliseconds timeout);
  bool call_in_progress() const;
  // Waits again for a call that did not return in time.
  [[nodiscard]] std::string finish_call(uint64_t* result, std::chrono::milliseconds timeout);

  // Puts back what was saved and detaches (a signal that arrived between calls is sent again). Empty
  // on success. Never call while a call is in progress (the thread would return to nowhere).
  [[nodiscard]] std::string resume();

  // How long the thread has been stopped by us (or was, once resumed).
  std::chrono::microseconds stopped_for() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Why ptrace(PTRACE_SEIZE) of `pid` failed with `err`, in one line that says what would allow it
// (Yama ptrace_scope, CAP_SYS_PTRACE, another tracer).
std::string ptrace_refusal(pid_t pid, int err);

}  // namespace periscope::viewer
