// The agent's own manhole commands beyond the standard ones: info, threads.
#pragma once

#include <string>

#include "manhole/command_registry.h"

namespace periscope::agent {

// Empty on success, else the first error.
[[nodiscard]] std::string add_builtin_commands(manhole::CommandRegistry& registry);

}  // namespace periscope::agent
