#include "profiler/profile_formats.h"

#include <map>

#include "profiler/flamegraph_html.h"
#include "profiler/pprof.h"

namespace periscope {

std::string profile_format_for(const std::string& path, std::string* error) {
  if (path.ends_with(".folded")) return "folded";
  if (path.ends_with(".speedscope.json")) return "speedscope";
  if (path.ends_with(".pb.gz")) return "pprof";
  if (path.ends_with(".html")) return "html";
  *error = "'" + path + "': unknown format; the file name must end in .html, .folded, .speedscope.json or .pb.gz";
  return {};
}

std::string to_speedscope(const Profile& p, RootFrames roots) {
  nlohmann::json frames = nlohmann::json::array();
  std::map<std::string, size_t> frame_index;
  auto index_of = [&](const std::string& name) {
    auto [it, added] = frame_index.emplace(name, frames.size());
    if (added) frames.push_back({{"name", name}});
    return it->second;
  };
  // One sampled profile per thread when asked, else one for the whole process.
  std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> profiles;  // name -> samples, weights
  for (const auto& s : p.stacks) {
    auto& [samples, weights] = profiles[roots.thread ? s.thread : std::string("all threads")];
    nlohmann::json stack = nlohmann::json::array();
    for (const auto& f : root_frames(s, {roots.request, false})) stack.push_back(index_of(f));
    for (const auto& f : s.frames) stack.push_back(index_of(f));
    samples.push_back(std::move(stack));
    weights.push_back(s.count);
  }
  nlohmann::json out_profiles = nlohmann::json::array();
  for (auto& [name, sw] : profiles) {
    uint64_t total = 0;
    for (const auto& w : sw.second) total += w.get<uint64_t>();
    out_profiles.push_back({{"type", "sampled"},
                            {"name", name},
                            {"unit", "none"},
                            {"startValue", 0},
                            {"endValue", total},
                            {"samples", std::move(sw.first)},
                            {"weights", std::move(sw.second)}});
  }
  nlohmann::json doc{{"$schema", "https://www.speedscope.app/file-format-schema.json"},
                     {"exporter", "periscope"},
                     {"name", p.mode + " profile, " + std::to_string(p.hz) + " Hz, " + std::to_string(p.samples) +
                                  " samples, " + std::to_string(p.lost) + " lost"},
                     {"activeProfileIndex", 0},
                     {"shared", {{"frames", frames}}},
                     {"profiles", out_profiles}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string render_profile(const Profile& profile, const std::string& format, RootFrames roots) {
  if (format == "speedscope") return to_speedscope(profile, roots);
  if (format == "pprof") return to_pprof_gz(profile);  // threads and requests are labels in pprof
  if (format == "html") {
    return to_flamegraph_html(profile, "periscope " + profile.mode + " flame graph");  // threads, requests: menus
  }
  return to_folded(profile, roots);
}

}  // namespace periscope
