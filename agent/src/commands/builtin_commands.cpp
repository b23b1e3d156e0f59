#include "agent/src/commands/builtin_commands.h"

namespace periscope::agent {

std::string add_builtin_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  for (auto add : {add_process_commands, add_stacks_commands, add_slow_commands, add_metrics_commands,
                   add_profile_commands, add_heap_commands}) {
    if (auto err = add(registry, parts); !err.empty()) return err;
  }
  return {};
}

}  // namespace periscope::agent
