// The process-wide command and variable registries. They exist before the agent starts (the
// application adds to them with periscope::add_command / add_variable), with the manhole's
// standard commands and the agent's built-ins in them; the built-ins reach the running agent
// through live_parts(), which only the agent's lifecycle fills in.
//
// Threading: thread-safe; leaked on purpose (commands may run while the process exits).
#pragma once

#include "agent/src/live_parts.h"
#include "manhole/command_registry.h"
#include "manhole/variable_registry.h"

namespace periscope::agent {

manhole::CommandRegistry& command_registry();
manhole::VariableRegistry& variable_registry();
LiveParts& live_parts();

}  // namespace periscope::agent
