// The standard process_* metrics every Prometheus client library exports (names and meanings as
// in the Go and Python clients), read from /proc/self at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace periscope::agent {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds, process_threads. A fact that
// cannot be read is left out rather than reported as 0.
std::vector<prometheus::MetricFamily> collect_process_metrics();

}  // namespace periscope::agent
