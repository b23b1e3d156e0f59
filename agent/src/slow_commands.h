// The watchdog's manhole commands: `slow [SINCE]` (recent slow-request reports) and
// `inflight [LIMIT]` (requests running now, oldest first).
#pragma once

#include <string>

#include "manhole/command_registry.h"

namespace periscope::agent {

[[nodiscard]] std::string add_slow_commands(manhole::CommandRegistry& registry);

}  // namespace periscope::agent
