#include "agent/src/metrics/metric_builders.h"

namespace periscope::agent {

namespace {
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}
}  // namespace

prometheus::MetricFamily counter_family(std::string name, std::string help) {
  return family(std::move(name), std::move(help), prometheus::MetricType::Counter);
}

prometheus::MetricFamily gauge_family(std::string name, std::string help) {
  return family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
}

void add_sample(prometheus::MetricFamily& family, double value, const MetricLabels& labels) {
  prometheus::ClientMetric m;
  for (const auto& [name, label_value] : labels) m.label.push_back({name, label_value});
  if (family.type == prometheus::MetricType::Counter) m.counter.value = value;
  else if (family.type == prometheus::MetricType::Gauge) m.gauge.value = value;
  else m.untyped.value = value;
  family.metric.push_back(std::move(m));
}

}  // namespace periscope::agent
