// metrics: what /metrics serves, as Prometheus text and as JSON (families with their series)
// for the viewer.
#include <prometheus/text_serializer.h>

#include <cmath>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/metrics/metrics.h"

namespace periscope::agent {

namespace {

const char* type_name(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Histogram: return "histogram";
    case prometheus::MetricType::Summary: return "summary";
    default: return "untyped";
  }
}

// JSON numbers cannot be inf or nan: those go as strings, as Prometheus writes them.
nlohmann::json number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return v;
}

nlohmann::json series_json(const prometheus::MetricFamily& f, const prometheus::ClientMetric& m) {
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& l : m.label) labels[l.name] = l.value;
  nlohmann::json s = {{"labels", labels}};
  switch (f.type) {
    case prometheus::MetricType::Counter: s["value"] = number(m.counter.value); break;
    case prometheus::MetricType::Gauge: s["value"] = number(m.gauge.value); break;
    case prometheus::MetricType::Histogram: {
      s["count"] = m.histogram.sample_count;
      s["sum"] = number(m.histogram.sample_sum);
      nlohmann::json buckets = nlohmann::json::array();
      for (const auto& b : m.histogram.bucket) buckets.push_back({{"le", number(b.upper_bound)}, {"count", b.cumulative_count}});
      s["buckets"] = std::move(buckets);
      break;
    }
    case prometheus::MetricType::Summary: {
      s["count"] = m.summary.sample_count;
      s["sum"] = number(m.summary.sample_sum);
      nlohmann::json quantiles = nlohmann::json::array();
      for (const auto& q : m.summary.quantile) quantiles.push_back({{"quantile", q.quantile}, {"value", number(q.value)}});
      s["quantiles"] = std::move(quantiles);
      break;
    }
    default: s["value"] = number(m.untyped.value); break;
  }
  return s;
}

nlohmann::json families_json(const Families& families) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : families) {
    nlohmann::json series = nlohmann::json::array();
    for (const auto& m : f.metric) series.push_back(series_json(f, m));
    out.push_back({{"name", f.name}, {"help", f.help}, {"type", type_name(f.type)}, {"series", std::move(series)}});
  }
  return out;
}

protocol::Reply metrics_command(const LiveParts& parts) {
  Families families = collect_metrics(parts);
  std::string text = prometheus::TextSerializer().Serialize(families);
  return protocol::Reply::success(std::move(text), families_json(families));
}

}  // namespace

std::string add_metrics_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  return registry.add({"metrics", "", "Prometheus metrics: process, agent, requests and the application's own",
                       [&parts](const manhole::Args&) { return metrics_command(parts); }});
}

}  // namespace periscope::agent
