#include "agent/src/watchdog/slow_report_format.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "profiler/thread_stacks.h"
#include "protocol/text_table.h"

namespace periscope::agent {

namespace {

std::string iso_time(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  tm t{};
  ::gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

// Where the request was last seen: the innermost named frame of the host's own code says most;
// libc and friends say little.
std::string last_seen_at(const SlowReport& report) {
  if (report.stacks.empty()) return {};
  const SlowStack& s = report.stacks.back();
  auto named = std::find_if(s.frames.begin(), s.frames.end(), [](const Frame& f) {
    return !f.function.empty() && !is_runtime_library(f.module);
  });
  if (named == s.frames.end()) {
    named = std::find_if(s.frames.begin(), s.frames.end(), [](const Frame& f) { return !f.function.empty(); });
  }
  return !s.error.empty()          ? s.error
         : named != s.frames.end() ? describe_frame(*named, false)
         : s.frames.empty()        ? "no frames"
                                   : describe_frame(s.frames.front(), false);
}

// "  412 samples while slow (a profile ran), where they were:" and a table of functions: CODE the
// share whose innermost frame of the program's own code is in it, SELF in it, TOTAL under it.
std::string render_sampled(const SlowReport& r) {
  if (r.samples == 0) return {};
  auto percent = [&](uint64_t n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(n) / static_cast<double>(r.samples));
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows{{"CODE", "SELF", "TOTAL", "FUNCTION"}};
  for (const auto& f : r.top) rows.push_back({percent(f.code), percent(f.self), percent(f.total), f.function});
  std::string table = protocol::format_table(rows);
  std::string out = "  " + std::to_string(r.samples) + " samples while slow (a profile ran), where they were:\n";
  for (size_t at = 0; at < table.size();) {
    size_t end = table.find('\n', at);
    if (end == std::string::npos) end = table.size();
    out += "    " + table.substr(at, end - at) + "\n";
    at = end + 1;
  }
  return out;
}

}  // namespace

bool is_runtime_library(const std::string& module) {
  for (const char* prefix : {"libc.so", "libstdc++.so", "libm.so", "libgcc_s.so", "libpthread.so", "ld-linux", "[vdso]",
                             "libasan.so", "libubsan.so", "libtsan.so", "liblsan.so"}) {
    if (module.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string slow_log_record(const SlowReport& report, const char* event, pid_t pid) {
  nlohmann::json j = report_to_json(report);
  j["event"] = event;
  j["pid"] = pid;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string slow_log_text(const SlowReport& report, const char* event) {
  const std::string where = last_seen_at(report);
  const std::string what = std::string(event) == "slow" ? "running for " + human_ms(report.duration_ms)
                                                        : "finished after " + human_ms(report.duration_ms);
  return "slow request '" + report.name + "' (id " + std::to_string(report.id) + ") on thread " +
         std::to_string(report.tid) + " " + what + (where.empty() ? "" : ": at " + where);
}

std::string human_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 1000 ? "%.0f ms" : "%.2f s", ms < 1000 ? ms : ms / 1000);
  return buf;
}

nlohmann::json report_to_json(const SlowReport& r) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : r.stacks) {
    nlohmann::json j{{"count", s.count}, {"first_at_ms", s.first_at_ms}, {"frames", frames_to_json(s.frames)}};
    if (!s.error.empty()) j["error"] = s.error;
    stacks.push_back(std::move(j));
  }
  nlohmann::json top = nlohmann::json::array();
  for (const auto& f : r.top) {
    top.push_back({{"function", f.function}, {"code", f.code}, {"self", f.self}, {"total", f.total}});
  }
  return {{"seq", r.seq},
          {"name", r.name},
          {"id", r.id},
          {"tid", r.tid},
          {"thread_name", r.thread_name},
          {"started", iso_time(r.started_unix_ms)},
          {"started_unix_ms", r.started_unix_ms},
          {"threshold_ms", r.threshold_ms},
          {"duration_ms", r.duration_ms},
          {"finished", r.finished},
          {"stacks", stacks},
          {"samples", r.samples},
          {"top", std::move(top)}};
}


nlohmann::json reports_to_json(const SlowReportList& list) {
  nlohmann::json reports = nlohmann::json::array();
  for (const auto& r : list.reports) reports.push_back(report_to_json(r));
  return {{"reports", std::move(reports)}, {"next_seq", list.next_seq}, {"symbolizing", list.symbolizing}};
}

nlohmann::json inflight_to_json(const InflightList& list) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : list.oldest) {
    rows.push_back({{"name", r.name}, {"id", r.id}, {"tid", r.tid}, {"age_ms", r.age_ms}, {"slow", r.slow},
                    {"threshold_ms", r.threshold_ms}});
  }
  return {{"inflight", std::move(rows)}, {"total", list.total}, {"capacity", list.capacity}, {"dropped", list.dropped}};
}

std::string render_reports(const SlowReportList& list) {
  const std::string more =
      list.symbolizing == 0 ? ""
                            : std::to_string(list.symbolizing) + " more caught, their stacks being symbolized\n";
  if (list.reports.empty()) return "no slow requests\n" + more;
  std::string out;
  for (const auto& r : list.reports) {
    out += "#" + std::to_string(r.seq) + " '" + r.name + "'";
    if (r.id != 0) out += " id " + std::to_string(r.id);
    out += ": " + human_ms(r.duration_ms) + (r.finished ? " (finished)" : " so far (still running)") + ", threshold " +
           human_ms(static_cast<double>(r.threshold_ms)) + ", thread " + std::to_string(r.tid) + " \"" +
           r.thread_name + "\", started " + iso_time(r.started_unix_ms) + "\n";
    for (const auto& s : r.stacks) {
      out += "  stack at " + human_ms(s.first_at_ms);
      if (s.count > 1) out += " (seen " + std::to_string(s.count) + " times)";
      if (!s.error.empty()) {
        out += ": " + s.error + "\n";
        continue;
      }
      out += ":\n";
      for (size_t i = 0; i < s.frames.size(); ++i) {
        out += "    #" + std::to_string(i) + (i < 10 ? "  " : " ") + describe_frame(s.frames[i], false) + "\n";
      }
    }
    out += render_sampled(r);
    out += "\n";
  }
  return out + more;
}

std::string render_inflight(const InflightList& list) {
  std::vector<std::vector<std::string>> rows{{"NAME", "ID", "TID", "AGE", "SLOW"}};
  for (const auto& r : list.oldest) {
    rows.push_back({r.name, std::to_string(r.id), r.tid ? std::to_string(r.tid) : "detached", human_ms(r.age_ms),
                    r.slow ? "yes" : ""});
  }
  std::string out = rows.size() > 1 ? protocol::format_table(rows) : std::string();
  out += std::to_string(list.total) + " requests in flight";
  if (list.total > list.oldest.size()) out += " (oldest " + std::to_string(list.oldest.size()) + " shown)";
  if (list.dropped > 0) {
    out += "; " + std::to_string(list.dropped) + " not tracked (table of " + std::to_string(list.capacity) + " full)";
  }
  return out + "\n";
}

}  // namespace periscope::agent
