// Slow-request reports and the requests in flight as JSON (the `slow` and `inflight` replies,
// the JSON-lines log) and as text for a person.
#pragma once

#include <string>
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "agent/src/watchdog/watchdog.h"

namespace periscope::agent {

nlohmann::json report_to_json(const SlowReport& report);
nlohmann::json reports_to_json(const SlowReportList& list);
nlohmann::json inflight_to_json(const InflightList& list);

std::string render_reports(const SlowReportList& list);
std::string render_inflight(const InflightList& list);

// The slow-request log's two forms: a JSON line (PERISCOPE_SLOW_LOG, newline included) and the
// one line on stderr ("slow request 'GET /x' (id 7) on thread 42 running for 840 ms: at f (a.cc:3)").
// `event` is "slow" or "finished".
std::string slow_log_record(const SlowReport& report, const char* event, pid_t pid);
std::string slow_log_text(const SlowReport& report, const char* event);

// libc, libstdc++, ld.so, the vDSO, the sanitizer runtimes...: code a program calls, not its own.
bool is_runtime_library(const std::string& module);

// "840 ms", "2.50 s".
std::string human_ms(double ms);

}  // namespace periscope::agent
