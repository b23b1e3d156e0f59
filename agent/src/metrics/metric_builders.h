// Small helpers to build prometheus-cpp MetricFamily values for metrics we compute at scrape time
// (process facts, the agent's own counters) instead of keeping live Counter objects.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace periscope::agent {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

prometheus::MetricFamily counter_family(std::string name, std::string help);
prometheus::MetricFamily gauge_family(std::string name, std::string help);
// Adds one series to a counter or gauge family (the family's type says which value is set).
void add_sample(prometheus::MetricFamily& family, double value, const MetricLabels& labels = {});

}  // namespace periscope::agent
