#include "profiler/thread_stacks.h"


namespace periscope {

std::vector<Frame> symbolize_frames(const std::vector<RawFrame>& raw, Symbolizer& symbolizer) {
  std::vector<Frame> frames;
  for (const auto& r : raw) {
    auto expanded = symbolizer.symbolize(r.pc, r.return_address);
    frames.insert(frames.end(), expanded.begin(), expanded.end());
  }
  return frames;
}

std::vector<Frame> symbolize_captured(const std::vector<uint64_t>& pcs, Symbolizer& symbolizer) {
  std::vector<RawFrame> raw;
  raw.reserve(pcs.size());
  for (size_t i = 0; i < pcs.size(); ++i) raw.push_back({pcs[i], i != 0});
  return symbolize_frames(raw, symbolizer);
}

nlohmann::json frames_to_json(const std::vector<Frame>& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : frames) {
    out.push_back({{"pc", f.pc},
                   {"function", f.function},
                   {"file", f.file},
                   {"line", f.line},
                   {"module", f.module},
                   {"module_offset", f.module_offset},
                   {"inlined", f.inlined}});
  }
  return out;
}

std::vector<Frame> frames_from_json(const nlohmann::json& frames) {
  std::vector<Frame> out;
  for (const auto& f : frames) {
    out.push_back({f.at("pc").get<uint64_t>(), f.value("function", ""), f.value("file", ""), f.value("line", 0),
                   f.value("module", ""), f.value("module_offset", uint64_t{0}), f.value("inlined", false)});
  }
  return out;
}

nlohmann::json stacks_to_json(const std::vector<ThreadStack>& stacks) {
  nlohmann::json threads = nlohmann::json::array();
  for (const auto& s : stacks) {
    nlohmann::json t{{"tid", s.tid}, {"name", s.name}, {"state", s.state}, {"frames", frames_to_json(s.frames)},
                     {"truncated", s.truncated}};
    if (!s.error.empty()) t["error"] = s.error;
    if (!s.pcs.empty()) t["pcs"] = s.pcs;
    if (!s.note.empty()) t["note"] = s.note;
    threads.push_back(std::move(t));
  }
  return {{"threads", threads}};
}

std::vector<ThreadStack> stacks_from_json(const nlohmann::json& json) {
  std::vector<ThreadStack> stacks;
  for (const auto& t : json.at("threads")) {
    ThreadStack s;
    s.tid = t.at("tid").get<pid_t>();
    s.name = t.value("name", "");
    s.state = t.value("state", "");
    s.truncated = t.value("truncated", false);
    s.error = t.value("error", "");
    s.frames = frames_from_json(t.at("frames"));
    s.pcs = t.value("pcs", std::vector<uint64_t>{});
    s.note = t.value("note", "");
    stacks.push_back(std::move(s));
  }
  return stacks;
}

std::string render_stacks(const std::vector<ThreadStack>& stacks, bool full_names) {
  std::string out;
  for (const auto& s : stacks) {
    out += "Thread " + std::to_string(s.tid) + " \"" + s.name + "\" (" + s.state + ")";
    if (!s.note.empty()) out += " [" + s.note + "]";
    if (!s.error.empty()) {
      out += ": " + s.error + "\n\n";
      continue;
    }
    out += "\n";
    for (size_t i = 0; i < s.frames.size(); ++i) {
      out += "  #" + std::to_string(i) + (i < 10 ? "  " : " ") + describe_frame(s.frames[i], full_names) + "\n";
    }
    if (s.truncated) out += "  ... cut at " + std::to_string(kMaxStackDepth) + " frames\n";
    out += "\n";
  }
  return out;
}

}  // namespace periscope
