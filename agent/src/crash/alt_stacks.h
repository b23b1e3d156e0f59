// Alternate signal stacks, so that a crash from stack overflow still gets its report: the crash
// handler runs with SA_ONSTACK, and a thread whose stack is exhausted can only run it on another.
// The main thread gets one in static memory when the crash report is installed from it; threads
// the host starts afterwards get one from a pool of mappings (agent/src/hooks/thread_hooks.cpp)
// that they give back when they end: no munmap per thread, and pages only a crash touches.
#pragma once

#include <cstddef>

namespace periscope::agent {

inline constexpr size_t kAltStackBytes = 64 * 1024;

// The calling thread, if it is the process's main thread and has no alternate stack yet (the
// host's own stays).
void give_main_thread_alt_stack();

// Whether new threads should get one: the crash report is installed (one atomic load).
bool new_threads_want_alt_stacks();
void set_new_threads_want_alt_stacks(bool want);

// In a fork child: the pool's lock, if a parent thread held it, is free again.
void reset_alt_stack_pool_in_fork_child();

// The calling thread's alternate stack for the scope's lifetime, unless it has one already.
class ThreadAltStack {
 public:
  ThreadAltStack();
  ~ThreadAltStack();
  ThreadAltStack(const ThreadAltStack&) = delete;
  ThreadAltStack& operator=(const ThreadAltStack&) = delete;

 private:
  void* stack_ = nullptr;
};

}  // namespace periscope::agent
