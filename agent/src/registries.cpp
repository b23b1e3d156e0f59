#include "agent/src/registries.h"

#include "agent/src/fork_handling.h"

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/logging.h"
#include "manhole/standard_commands.h"

namespace periscope::agent {

LiveParts& live_parts() {
  static auto* parts = new LiveParts;
  return *parts;
}

PERISCOPE_FORK_PATH manhole::VariableRegistry& variable_registry() {
  static auto* registry = new manhole::VariableRegistry;
  return *registry;
}

PERISCOPE_FORK_PATH manhole::CommandRegistry& command_registry() {
  static manhole::CommandRegistry* registry = [] {
    auto* r = new manhole::CommandRegistry;
    std::string err = manhole::add_standard_commands(*r, variable_registry());
    if (err.empty()) err = add_builtin_commands(*r, live_parts());
    if (!err.empty()) log_line("agent: built-in commands incomplete: " + err);
    return r;
  }();
  return *registry;
}

}  // namespace periscope::agent
