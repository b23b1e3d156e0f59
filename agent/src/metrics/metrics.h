// Everything /metrics serves: the standard process_* metrics, the agent's own periscope_*
// counters (profiler, stack capture, manhole, HTTP, slow-request watchdog) and every family the
// host registered in periscope::registry().
//
// Threading: collect on the io thread (it reads the profiler's and the servers' state there).
#pragma once

#include <memory>
#include <string>

#include "manhole/command_registry.h"

namespace prometheus {
class Registry;
}

namespace periscope::agent {

// The host's registry: created on first use, never destroyed (scrapes may run during exit).
std::shared_ptr<prometheus::Registry> host_registry();

// Prometheus text exposition format 0.0.4.
std::string metrics_text();

// `metrics`: the same metrics, as text and as JSON (families with their series) for the viewer.
[[nodiscard]] std::string add_metrics_command(manhole::CommandRegistry& registry);

}  // namespace periscope::agent
