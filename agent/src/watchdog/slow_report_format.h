// Slow-request reports and the requests in flight as JSON (the `slow` and `inflight` replies,
// the JSON-lines log) and as text for a person.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent/src/watchdog/watchdog.h"

namespace periscope::agent {

nlohmann::json report_to_json(const SlowReport& report);
nlohmann::json reports_to_json(const SlowReportList& list);
nlohmann::json inflight_to_json(const InflightList& list);

std::string render_reports(const SlowReportList& list);
std::string render_inflight(const InflightList& list);

// "840 ms", "2.50 s".
std::string human_ms(double ms);

}  // namespace periscope::agent
