// Registers the agent's pthread_atfork handlers, once per process.
#pragma once

#include <mutex>

namespace periscope::agent {

// Code that runs in every fork child: kept together (in .text.hot) so that a child faults in one
// page of it rather than one per function — fork cost is the host's.
#define PERISCOPE_FORK_PATH __attribute__((hot))

void install_fork_handlers_once();

// In a fork child: a mutex that some thread of the parent held at fork is locked for good in the
// child; give it a fresh state. Reads first, so that a mutex that was free costs no copied page.
// Returns whether it was held (what it guards may be half-changed).
bool reset_if_held_in_fork_child(std::mutex& mutex);

}  // namespace periscope::agent
