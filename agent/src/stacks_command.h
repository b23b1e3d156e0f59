// The `stacks [TID...]` manhole command: every thread's stack, captured in-process and symbolized
// on the agent's thread.
#pragma once

#include <string>

#include "manhole/command_registry.h"

namespace periscope::agent {

[[nodiscard]] std::string add_stacks_command(manhole::CommandRegistry& registry);

}  // namespace periscope::agent
