// `periscope metrics PID [FILTER]`: the agent's Prometheus metrics, read through the manhole (no
// HTTP needed) and printed as a table a person can read: one line per series, histograms as
// count, mean and quantile bounds, bytes in KiB/MiB/GiB. --raw prints the exposition text.
#include <cmath>
#include <cstdio>

#include "protocol/protocol.h"
#include "protocol/text_table.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

std::string number_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();  // NaN, +Inf
  double d = v.get<double>();
  char buf[64];
  if (d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", d);
  else std::snprintf(buf, sizeof buf, "%.10g", d);
  return buf;
}

std::string with_unit(const std::string& family, const nlohmann::json& v) {
  std::string text = number_text(v);
  if (!v.is_number() || !family.ends_with("_bytes")) return text;
  double d = v.get<double>();
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (d < 1024) return text;
  int u = -1;
  while (d >= 1024 && u < 3) d /= 1024, ++u;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s (%.1f %s)", text.c_str(), d, units[u]);
  return buf;
}

std::string labels_text(const nlohmann::json& labels) {
  std::string out;
  for (const auto& [name, value] : labels.items()) {
    out += (out.empty() ? "{" : ",") + name + "=\"" + value.get<std::string>() + "\"";
  }
  return out.empty() ? out : out + "}";
}

// Seconds as a person reads them: "850us", "12.5ms", "1.50s".
std::string seconds_text(double s) {
  char buf[32];
  if (s < 1e-3) std::snprintf(buf, sizeof buf, "%.0fus", s * 1e6);
  else if (s < 1) std::snprintf(buf, sizeof buf, "%.1fms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

std::string value_text(const std::string& family, const nlohmann::json& v) {
  if (v.is_number() && family.ends_with("_seconds")) return seconds_text(v.get<double>());
  return number_text(v);
}

// The smallest bucket bound holding quantile q of the observations ("<=250.0ms").
std::string quantile_bound(const std::string& family, const nlohmann::json& series, double q) {
  uint64_t count = series.value("count", uint64_t{0});
  if (count == 0) return "-";
  double rank = q * static_cast<double>(count);
  for (const auto& b : series["buckets"]) {
    if (static_cast<double>(b["count"].get<uint64_t>()) >= rank) return "<=" + value_text(family, b["le"]);
  }
  return "?";
}

std::string histogram_text(const std::string& family, const nlohmann::json& series) {
  uint64_t count = series.value("count", uint64_t{0});
  std::string text = "count " + std::to_string(count);
  if (count > 0 && series["sum"].is_number()) {
    text += ", mean " + value_text(family, series["sum"].get<double>() / static_cast<double>(count));
    text += ", p50 " + quantile_bound(family, series, 0.5) + ", p99 " + quantile_bound(family, series, 0.99);
  }
  return text;
}

std::string summary_text(const nlohmann::json& series) {
  std::string text = "count " + std::to_string(series.value("count", uint64_t{0}));
  for (const auto& q : series["quantiles"]) {
    text += ", q" + number_text(q["quantile"]) + " " + number_text(q["value"]);
  }
  return text;
}

}  // namespace

int run_metrics(pid_t pid, const MetricsOptions& metrics, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  auto frame = client.call_checked({"metrics"});
  if (metrics.raw) {
    print_untrusted(frame.value("text", ""));
    return kExitOk;
  }
  nlohmann::json families = nlohmann::json::array();
  for (const auto& f : frame["data"]) {
    if (f["name"].get<std::string>().find(metrics.filter) != std::string::npos) families.push_back(f);
  }
  if (options.json) {
    std::printf("%s\n", protocol::dump_json(families, 2).c_str());
    return kExitOk;
  }
  if (families.empty()) {
    std::printf("no metrics%s\n", metrics.filter.empty() ? "" : (" matching '" + metrics.filter + "'").c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"METRIC", "TYPE", "VALUE"}};
  for (const auto& f : families) {
    const std::string name = f["name"].get<std::string>();
    const std::string type = f["type"].get<std::string>();
    for (const auto& s : f["series"]) {
      std::string value = type == "histogram" ? histogram_text(name, s)
                          : type == "summary" ? summary_text(s)
                                              : with_unit(name, s["value"]);
      rows.push_back({name + labels_text(s["labels"]), type, value});
    }
  }
  print_untrusted(protocol::format_table(rows));
  return kExitOk;
}

}  // namespace periscope::viewer
