// The commands every manhole has, whatever it is attached to: help, quit, vars, get, set.
#pragma once

#include "manhole/command_registry.h"
#include "manhole/variable_registry.h"

namespace periscope::manhole {

// Registers the standard commands; `variables` must outlive `commands`.
// Returns an empty string on success, else the first error.
[[nodiscard]] std::string add_standard_commands(CommandRegistry& commands, VariableRegistry& variables);

}  // namespace periscope::manhole
