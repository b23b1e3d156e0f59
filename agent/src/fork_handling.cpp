#include "agent/src/fork_handling.h"

#include <pthread.h>

#include "agent/src/agent.h"

namespace periscope::agent {

namespace {

void prepare() { lock_for_fork(); }
void parent() { unlock_in_fork_parent(); }
void child() { restart_in_fork_child(); }

}  // namespace

// Called with the lifecycle lock held, so registration happens once.
void install_fork_handlers_once() {
  static bool installed = false;
  if (installed) return;
  installed = (::pthread_atfork(prepare, parent, child) == 0);
}

}  // namespace periscope::agent
