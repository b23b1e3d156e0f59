// Everything /metrics serves: the standard process_* metrics, the agent's own periscope_*
// counters (profiler, stack capture, manhole, HTTP, slow-request watchdog) and every family the
// host registered in periscope::registry().
//
// Threading: collect on the io thread (it reads the profiler's and the servers' state there).
#pragma once

#include <memory>
#include <string>

#include <prometheus/metric_family.h>
#include <vector>

#include "agent/src/live_parts.h"

namespace prometheus {
class Registry;
}

namespace periscope::agent {

// The host's registry: created on first use, never destroyed (scrapes may run during exit).
std::shared_ptr<prometheus::Registry> host_registry();

using Families = std::vector<prometheus::MetricFamily>;

// Every family, those of the running agent's parts included (none of them between agents).
Families collect_metrics(const LiveParts& parts);

// The same in the Prometheus text exposition format 0.0.4.
std::string metrics_text(const LiveParts& parts);

}  // namespace periscope::agent
