// The agent's built-in manhole commands, one file per family in this folder. Each family is
// handed, when it is registered, the live parts of the agent it uses (see live_parts.h); each
// returns an empty string on success, else why a command was not added.
#pragma once

#include <string>

#include "agent/src/live_parts.h"
#include "manhole/command_registry.h"

namespace periscope::agent {

[[nodiscard]] std::string add_process_commands(manhole::CommandRegistry& registry, const LiveParts& parts);  // info, threads
[[nodiscard]] std::string add_stacks_commands(manhole::CommandRegistry& registry, const LiveParts& parts);   // stacks
[[nodiscard]] std::string add_slow_commands(manhole::CommandRegistry& registry, const LiveParts& parts);     // slow, inflight
[[nodiscard]] std::string add_profile_commands(manhole::CommandRegistry& registry, const LiveParts& parts);  // profile
[[nodiscard]] std::string add_metrics_commands(manhole::CommandRegistry& registry, const LiveParts& parts);  // metrics
[[nodiscard]] std::string add_heap_commands(manhole::CommandRegistry& registry, const LiveParts& parts);     // heap

// All of the above.
[[nodiscard]] std::string add_builtin_commands(manhole::CommandRegistry& registry, const LiveParts& parts);

}  // namespace periscope::agent
