#include "profiler/profile.h"

#include <cmath>
#include <cstdio>
#include <map>

namespace periscope {

nlohmann::json profile_to_json(const Profile& p) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : p.stacks) {
    stacks.push_back({{"thread", s.thread}, {"frames", s.frames}, {"count", s.count}});
    if (!s.request.empty()) stacks.back()["request"] = s.request;
  }
  return {{"mode", p.mode},         {"hz", p.hz},           {"clock", p.clock}, {"seconds", p.seconds},
          {"unit", p.unit},         {"samples", p.samples},   {"lost", p.lost},       {"threads", p.threads}, {"stacks", stacks},
          {"unsampled", p.unsampled}, {"problem", p.problem},
          {"costs", {{"lost_buffer_full", p.costs.lost_buffer_full},
                     {"lost_in_handler", p.costs.lost_in_handler},
                     {"lost_missed_ticks", p.costs.lost_missed_ticks},
                     {"handler_p50_us", p.costs.handler_p50_us},
                     {"handler_p99_us", p.costs.handler_p99_us},
                     {"handler_s", p.costs.handler_s},
                     {"process_cpu_s", p.costs.process_cpu_s}}}};
}

std::string describe_costs(const Profile& p) {
  const SamplingCosts& c = p.costs;
  if (!c.known()) return {};
  char text[256];
  std::snprintf(text, sizeof text, "handler %.1f us median, %.1f us p99, %.2f%% of the process's CPU time",
                c.handler_p50_us, c.handler_p99_us, c.process_cpu_s > 0 ? 100 * c.handler_s / c.process_cpu_s : 0.0);
  std::string out = text;
  std::string lost;
  auto add = [&](uint64_t n, const char* why) {
    if (n > 0) lost += (lost.empty() ? "" : ", ") + std::to_string(n) + " " + why;
  };
  add(c.lost_buffer_full, "ring full");
  add(c.lost_in_handler, "inside the handler");
  add(c.lost_missed_ticks, "wall ticks missed");
  if (!lost.empty()) out += "; lost " + lost;
  return out;
}

std::string why_no_samples(const Profile& p) {
  if (p.samples > 0) return {};
  if (!p.problem.empty()) return p.problem;
  if (p.threads == 0 && !p.unsampled.empty()) return "no thread could be sampled";
  if (p.mode == "cpu") return "the process used no CPU time while it was sampled (--wall samples waiting threads too)";
  return "no thread answered the sampling signal";
}

Profile profile_from_json(const nlohmann::json& j) {
  Profile p;
  p.mode = j.at("mode").get<std::string>();
  p.hz = j.at("hz").get<int>();
  p.clock = j.value("clock", "");
  p.unit = j.value("unit", "samples");
  p.seconds = j.value("seconds", 0.0);
  p.samples = j.at("samples").get<uint64_t>();
  p.lost = j.value("lost", uint64_t{0});
  p.threads = j.value("threads", size_t{0});
  p.unsampled = j.value("unsampled", std::vector<std::string>{});
  p.problem = j.value("problem", "");
  if (auto c = j.find("costs"); c != j.end() && c->is_object()) {
    p.costs.lost_buffer_full = c->value("lost_buffer_full", uint64_t{0});
    p.costs.lost_in_handler = c->value("lost_in_handler", uint64_t{0});
    p.costs.lost_missed_ticks = c->value("lost_missed_ticks", uint64_t{0});
    p.costs.handler_p50_us = c->value("handler_p50_us", 0.0);
    p.costs.handler_p99_us = c->value("handler_p99_us", 0.0);
    p.costs.handler_s = c->value("handler_s", 0.0);
    p.costs.process_cpu_s = c->value("process_cpu_s", 0.0);
  }
  for (const auto& s : j.at("stacks")) {
    p.stacks.push_back({s.value("thread", ""), s.at("frames").get<std::vector<std::string>>(),
                        s.at("count").get<uint64_t>(), s.value("request", "")});
  }
  return p;
}

namespace {

// A frame name that cannot break the folded format: ';' separates frames, the last ' ' the count.
std::string folded_name(const std::string& name) {
  std::string out = name.empty() ? "[unknown]" : name;
  for (char& c : out) {
    if (c == ';' || c == '\n') c = ':';
  }
  return out;
}

}  // namespace

std::vector<std::string> root_frames(const ProfileStack& s, RootFrames roots) {
  std::vector<std::string> out;
  if (roots.request) out.push_back(folded_name(s.request.empty() ? "[no request]" : "[request " + s.request + "]"));
  if (roots.thread) out.push_back(folded_name(s.thread));
  return out;
}

std::string to_folded(const Profile& p, RootFrames roots) {
  std::map<std::string, uint64_t> lines;  // identical lines merge (same stack on several threads)
  for (const auto& s : p.stacks) {
    std::string line;
    for (const auto& f : root_frames(s, roots)) line += (line.empty() ? "" : ";") + f;
    for (const auto& f : s.frames) line += (line.empty() ? "" : ";") + folded_name(f);
    if (line.empty()) line = "[no frames]";
    lines[line] += s.count;
  }
  std::string out;
  for (const auto& [line, count] : lines) out += line + " " + std::to_string(count) + "\n";
  return out;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = std::fabs(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char text[32];
  if (u == 0) std::snprintf(text, sizeof text, "%s%.0f B", bytes < 0 ? "-" : "", v);
  else std::snprintf(text, sizeof text, "%s%.*f %s", bytes < 0 ? "-" : "", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
  return text;
}

}  // namespace periscope
