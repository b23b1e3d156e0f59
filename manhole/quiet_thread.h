// A thread of the agent's own that no host signal lands on: it starts with every signal blocked
// (the host's handlers, and periscope's capture signals, are for the host's threads).
//
// Threading: any thread; the caller's signal mask is restored before this returns.
#pragma once

#include <csignal>
#include <pthread.h>
#include <thread>
#include <utility>

namespace periscope::manhole {

template <typename F>
std::thread start_quiet_thread(F&& body) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread t(std::forward<F>(body));
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return t;
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
}

}  // namespace periscope::manhole
