// What the agent's lifecycle needs from the request API.
#pragma once

#include "agent/src/watchdog/request_table.h"

namespace periscope::agent {

// Applies the thresholds set with periscope::set_slow_threshold to a new table.
void apply_saved_thresholds(RequestTable& table);

}  // namespace periscope::agent
