#include "agent/src/fork_handling.h"

#include <new>
#include <pthread.h>

#include "agent/src/agent.h"

namespace periscope::agent {

namespace {

PERISCOPE_FORK_PATH void child() { restart_in_fork_child(); }

}  // namespace

// Called with the lifecycle lock held, so registration happens once.
void install_fork_handlers_once() {
  static bool installed = false;
  if (installed) return;
  // No prepare or parent handler: the parent pays nothing for the agent at fork.
  installed = (::pthread_atfork(nullptr, nullptr, child) == 0);
}

PERISCOPE_FORK_PATH bool reset_if_held_in_fork_child(std::mutex& mutex) {
  if (mutex.native_handle()->__data.__lock == 0) return false;  // glibc's pthread_mutex_t
  new (&mutex) std::mutex;
  return true;
}

}  // namespace periscope::agent
