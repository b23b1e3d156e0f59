// Registers the agent's pthread_atfork handlers, once per process.
#pragma once

namespace periscope::agent {

void install_fork_handlers_once();

}  // namespace periscope::agent
