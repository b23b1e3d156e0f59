// The slow-request watchdog's metrics: per request name, how many ran, how many were slow, and
// their durations as a histogram; plus requests in flight and requests the table had no room for.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace periscope::agent {

class RequestTable;

// Reads the table's counters (any thread; the counts are atomics, summed without a lock).
std::vector<prometheus::MetricFamily> collect_request_metrics(const RequestTable& table);

}  // namespace periscope::agent
