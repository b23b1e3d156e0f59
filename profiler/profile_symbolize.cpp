#include "profiler/profile_symbolize.h"

#include <algorithm>

#include "profiler/function_names.h"

namespace periscope {

std::vector<std::string> profile_frame_names(const std::vector<uint64_t>& pcs, Symbolizer& symbolizer) {
  std::vector<std::string> frames;
  for (size_t i = 0; i < pcs.size(); ++i) {
    if (pcs[i] == 0) {
      frames.push_back("[cut at 256 frames]");
      continue;
    }
    for (const auto& f : symbolizer.symbolize(pcs[i], i != 0)) {
      frames.push_back(f.function.empty() ? describe_frame(f) : short_function_name(f.function));
    }
  }
  std::reverse(frames.begin(), frames.end());
  return frames;
}

Profile profile_from_raw_json(const nlohmann::json& json, Symbolizer& symbolizer) {
  nlohmann::json named = json;
  for (auto& stack : named.at("stacks")) {
    stack["frames"] = profile_frame_names(stack.at("pcs").get<std::vector<uint64_t>>(), symbolizer);
    stack.erase("pcs");
  }
  return profile_from_json(named);
}

}  // namespace periscope
