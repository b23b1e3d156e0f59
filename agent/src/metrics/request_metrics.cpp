#include "agent/src/metrics/request_metrics.h"

#include <limits>
#include <string>

#include "agent/src/metrics/metric_builders.h"
#include "agent/src/watchdog/request_table.h"

namespace periscope::agent {

namespace {

std::string name_of(const RequestTable& table, size_t index) {
  return index == table.max_names() ? std::string("other") : std::string(table.name_stats(index).name);
}

prometheus::ClientMetric histogram_of(const NameTotals& totals, const std::string& name) {
  prometheus::ClientMetric m;
  m.label.push_back({"name", name});
  m.histogram.sample_count = totals.requests;
  m.histogram.sample_sum = static_cast<double>(totals.sum_ns) / 1e9;
  uint64_t cumulative = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    cumulative += totals.buckets[b];
    double upper = b < kDurationBucketsMs.size() ? kDurationBucketsMs[b] / 1000.0
                                                 : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back({cumulative, upper});
  }
  return m;
}

size_t requests_in_flight(const RequestTable& table) {
  size_t n = 0;
  for (size_t i = 0, end = table.high_water(); i < end; ++i) {
    SlotState s = slot_state(table.slot(i).word.load(std::memory_order_acquire));
    if (s == kActive || s == kReported) ++n;
  }
  return n;
}

}  // namespace

std::vector<prometheus::MetricFamily> collect_request_metrics(const RequestTable& table) {
  auto requests = counter_family("periscope_requests_total", "Requests that ended, by name (periscope::Request).");
  auto slow = counter_family("periscope_slow_requests_total",
                             "Requests that outlived their slow threshold, by name (the watchdog reported them).");
  prometheus::MetricFamily durations;
  durations.name = "periscope_request_duration_seconds";
  durations.help = "Duration of requests that ended, by name.";
  durations.type = prometheus::MetricType::Histogram;
  const size_t names = table.names();
  for (size_t i = 0; i <= names; ++i) {
    size_t index = i == names ? table.max_names() : i;  // the registered names, then "other"
    NameTotals totals = table.totals(index);
    if (index == table.max_names() && totals.requests == 0 && totals.slow == 0) continue;
    const std::string name = name_of(table, index);
    add_sample(requests, static_cast<double>(totals.requests), {{"name", name}});
    add_sample(slow, static_cast<double>(totals.slow), {{"name", name}});
    durations.metric.push_back(histogram_of(totals, name));
  }
  auto in_flight = gauge_family("periscope_requests_in_flight", "Requests running now.");
  add_sample(in_flight, static_cast<double>(requests_in_flight(table)));
  auto dropped = counter_family("periscope_requests_untracked_total",
                                "Requests not tracked because the request table was full (PERISCOPE_SLOW_MAX_INFLIGHT).");
  add_sample(dropped, static_cast<double>(table.dropped()));
  return {std::move(requests), std::move(slow), std::move(durations), std::move(in_flight), std::move(dropped)};
}

}  // namespace periscope::agent
