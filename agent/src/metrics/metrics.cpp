#include "agent/src/metrics/metrics.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstdio>

#include "agent/src/http/http_server.h"
#include "agent/src/metrics/metric_builders.h"
#include "agent/src/heap/heap_sampler.h"
#include "agent/src/metrics/process_metrics.h"
#include "agent/src/metrics/request_metrics.h"
#include "agent/src/profiling.h"
#include "agent/src/watchdog/request_table.h"
#include "manhole/server.h"
#include "profiler/capture/stack_capture.h"

namespace periscope::agent {

namespace {

void add_profiler_metrics(const LiveParts& parts, Families& out) {
  ProfilingTotals totals;
  if (Profiling* profiling = parts.profiling.load()) totals = profiling_totals(*profiling);
  out.push_back(counter_family("periscope_profile_samples_total", "Profiler samples taken."));
  add_sample(out.back(), static_cast<double>(totals.samples));
  out.push_back(counter_family("periscope_profile_samples_lost_total",
                               "Profiler samples dropped, by reason: the sample ring was full, a signal came while "
                               "the handler ran on that thread, a wall-clock tick the agent's thread missed."));
  add_sample(out.back(), static_cast<double>(totals.lost_buffer_full), {{"reason", "buffer_full"}});
  add_sample(out.back(), static_cast<double>(totals.lost_in_handler), {{"reason", "in_handler"}});
  add_sample(out.back(), static_cast<double>(totals.lost_missed_ticks), {{"reason", "missed_tick"}});
  out.push_back(counter_family("periscope_profile_handler_seconds_total",
                               "Time the process's threads spent in the sampling handler (unwinding included)."));
  add_sample(out.back(), static_cast<double>(totals.handler_ns) / 1e9);
  out.push_back(gauge_family("periscope_profile_handler_p50_seconds",
                             "The sampling handler's median time per sample in the current or last profile."));
  add_sample(out.back(), totals.handler_p50_ns / 1e9);
  out.push_back(gauge_family("periscope_profile_handler_p99_seconds",
                             "The sampling handler's 99th percentile time per sample in the current or last profile."));
  add_sample(out.back(), totals.handler_p99_ns / 1e9);
  out.push_back(gauge_family("periscope_profile_overhead_ratio",
                             "Sampling handler time over the process's CPU time, current or last profile (the kernel's "
                             "timer and signal delivery are not included)."));
  add_sample(out.back(), totals.overhead_ratio);
  out.push_back(gauge_family("periscope_profile_threads_unsampled",
                             "Threads the current or last profile could not sample (they block the signal)."));
  add_sample(out.back(), static_cast<double>(totals.unsampled_threads));
  StackCapture::Counters captures = StackCapture::counters();
  out.push_back(counter_family("periscope_signals_sent_total", "Signals the agent sent to the process's threads."));
  add_sample(out.back(), static_cast<double>(totals.signals), {{"purpose", "profile"}});
  add_sample(out.back(), static_cast<double>(captures.signals_sent), {{"purpose", "stacks"}});
  out.push_back(counter_family("periscope_stack_captures_total", "Thread stacks asked for, by outcome."));
  add_sample(out.back(), static_cast<double>(captures.captured), {{"result", "ok"}});
  add_sample(out.back(), static_cast<double>(captures.timed_out), {{"result", "timed_out"}});
  add_sample(out.back(), static_cast<double>(captures.not_signalled), {{"result", "not_signalled"}});
}

void add_heap_metrics(Families& out) {
  const HeapState heap = heap_state();
  out.push_back(gauge_family("periscope_heap_profiling", "1 while heap profiling samples allocations."));
  add_sample(out.back(), heap.on ? 1 : 0);
  if (heap.rate == 0) return;  // never started
  out.push_back(gauge_family("periscope_heap_inuse_bytes",
                             "Estimated bytes still in use of those allocated since heap profiling started "
                             "(from sampled allocations)."));
  add_sample(out.back(), heap.inuse_bytes);
  out.push_back(counter_family("periscope_heap_allocated_bytes_total",
                               "Estimated bytes allocated since heap profiling started (from sampled allocations)."));
  add_sample(out.back(), heap.alloc_bytes);
  out.push_back(counter_family("periscope_heap_samples_total", "Allocations sampled by the heap profiler."));
  add_sample(out.back(), static_cast<double>(heap.samples));
}

void add_server_metrics(const LiveParts& parts, Families& out) {
  if (const manhole::ServerCounters* c = parts.sessions.load()) {
    out.push_back(counter_family("periscope_manhole_connections_total", "Manhole connections, by outcome."));
    add_sample(out.back(), static_cast<double>(c->accepted.load()), {{"result", "accepted"}});
    add_sample(out.back(), static_cast<double>(c->refused_uid.load()), {{"result", "refused_uid"}});
    add_sample(out.back(), static_cast<double>(c->refused_busy.load()), {{"result", "refused_busy"}});
    out.push_back(gauge_family("periscope_manhole_sessions", "Manhole sessions open now."));
    add_sample(out.back(), static_cast<double>(c->active.load()));
  }
  if (const HttpCounters* c = parts.http.load()) {
    out.push_back(counter_family("periscope_http_connections_total", "HTTP admin connections, by outcome."));
    add_sample(out.back(), static_cast<double>(c->accepted.load()), {{"result", "accepted"}});
    add_sample(out.back(), static_cast<double>(c->refused_busy.load()), {{"result", "refused_busy"}});
    add_sample(out.back(), static_cast<double>(c->timed_out.load()), {{"result", "timed_out"}});
    add_sample(out.back(), static_cast<double>(c->refused_per_peer.load()), {{"result", "refused_per_peer"}});
    add_sample(out.back(), static_cast<double>(c->abandoned.load()), {{"result", "abandoned"}});
    out.push_back(counter_family("periscope_http_responses_total", "HTTP admin responses, by status code."));
    for (const auto& [code, count] : c->responses) {
      add_sample(out.back(), static_cast<double>(count), {{"code", std::to_string(code)}});
    }
  }
}

}  // namespace

Families collect_metrics(const LiveParts& parts) {
  Families out = collect_process_metrics();
  add_profiler_metrics(parts, out);
  add_server_metrics(parts, out);
  add_heap_metrics(out);
  if (const RequestTable* table = request_table()) {
    for (auto& f : collect_request_metrics(*table)) out.push_back(std::move(f));
  }
  for (auto& f : host_registry()->Collect()) out.push_back(std::move(f));
  std::erase_if(out, [](const prometheus::MetricFamily& f) { return f.metric.empty(); });
  return out;
}

std::shared_ptr<prometheus::Registry> host_registry() {
  // Leaked on purpose, like the command registry: a scrape may run while the process exits.
  static auto* registry = new std::shared_ptr<prometheus::Registry>(std::make_shared<prometheus::Registry>());
  return *registry;
}

std::string metrics_text(const LiveParts& parts) { return prometheus::TextSerializer().Serialize(collect_metrics(parts)); }

}  // namespace periscope::agent
