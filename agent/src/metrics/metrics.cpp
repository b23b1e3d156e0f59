#include "agent/src/metrics/metrics.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstdio>

#include "agent/src/agent.h"
#include "agent/src/http/http_server.h"
#include "agent/src/metrics/metric_builders.h"
#include "agent/src/metrics/process_metrics.h"
#include "agent/src/metrics/request_metrics.h"
#include "agent/src/profiling.h"
#include "agent/src/watchdog/request_table.h"
#include "manhole/server.h"
#include "profiler/capture/stack_capture.h"

namespace periscope::agent {

namespace {

using Families = std::vector<prometheus::MetricFamily>;

void add_profiler_metrics(Families& out) {
  ProfilingTotals totals;
  if (Profiling* profiling = agent_profiling()) totals = profiling_totals(*profiling);
  out.push_back(counter_family("periscope_profile_samples_total", "Profiler samples taken."));
  add_sample(out.back(), static_cast<double>(totals.samples));
  out.push_back(counter_family("periscope_profile_samples_lost_total",
                               "Profiler samples dropped (buffer full, or taken inside the agent's own handler)."));
  add_sample(out.back(), static_cast<double>(totals.lost));
  StackCapture::Counters captures = StackCapture::counters();
  out.push_back(counter_family("periscope_signals_sent_total", "Signals the agent sent to the process's threads."));
  add_sample(out.back(), static_cast<double>(totals.signals), {{"purpose", "profile"}});
  add_sample(out.back(), static_cast<double>(captures.signals_sent), {{"purpose", "stacks"}});
  out.push_back(counter_family("periscope_stack_captures_total", "Thread stacks asked for, by outcome."));
  add_sample(out.back(), static_cast<double>(captures.captured), {{"result", "ok"}});
  add_sample(out.back(), static_cast<double>(captures.timed_out), {{"result", "timed_out"}});
  add_sample(out.back(), static_cast<double>(captures.not_signalled), {{"result", "not_signalled"}});
}

void add_server_metrics(Families& out) {
  if (const manhole::ServerCounters* c = agent_manhole_counters()) {
    out.push_back(counter_family("periscope_manhole_connections_total", "Manhole connections, by outcome."));
    add_sample(out.back(), static_cast<double>(c->accepted.load()), {{"result", "accepted"}});
    add_sample(out.back(), static_cast<double>(c->refused_uid.load()), {{"result", "refused_uid"}});
    add_sample(out.back(), static_cast<double>(c->refused_busy.load()), {{"result", "refused_busy"}});
    out.push_back(gauge_family("periscope_manhole_sessions", "Manhole sessions open now."));
    add_sample(out.back(), static_cast<double>(c->active.load()));
  }
  if (const HttpCounters* c = agent_http_counters()) {
    out.push_back(counter_family("periscope_http_connections_total", "HTTP admin connections, by outcome."));
    add_sample(out.back(), static_cast<double>(c->accepted.load()), {{"result", "accepted"}});
    add_sample(out.back(), static_cast<double>(c->refused_busy.load()), {{"result", "refused_busy"}});
    add_sample(out.back(), static_cast<double>(c->timed_out.load()), {{"result", "timed_out"}});
    out.push_back(counter_family("periscope_http_responses_total", "HTTP admin responses, by status code."));
    for (const auto& [code, count] : c->responses) {
      add_sample(out.back(), static_cast<double>(count), {{"code", std::to_string(code)}});
    }
  }
}

Families collect_all() {
  Families out = collect_process_metrics();
  add_profiler_metrics(out);
  add_server_metrics(out);
  if (const RequestTable* table = request_table()) {
    for (auto& f : collect_request_metrics(*table)) out.push_back(std::move(f));
  }
  for (auto& f : host_registry()->Collect()) out.push_back(std::move(f));
  std::erase_if(out, [](const prometheus::MetricFamily& f) { return f.metric.empty(); });
  return out;
}

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

protocol::Reply metrics_command(const manhole::Args&) {
  Families families = collect_all();
  std::string text = prometheus::TextSerializer().Serialize(families);
  return protocol::Reply::success(std::move(text), families_json(families));
}

}  // namespace

std::shared_ptr<prometheus::Registry> host_registry() {
  // Leaked on purpose, like the command registry: a scrape may run while the process exits.
  static auto* registry = new std::shared_ptr<prometheus::Registry>(std::make_shared<prometheus::Registry>());
  return *registry;
}

std::string metrics_text() { return prometheus::TextSerializer().Serialize(collect_all()); }

std::string add_metrics_command(manhole::CommandRegistry& registry) {
  return registry.add({"metrics", "", "Prometheus metrics: process, agent, requests and the application's own",
                       metrics_command});
}

}  // namespace periscope::agent
