// Every thread's stack as the user reads it: tid, name, state, symbolized frames; plus its JSON
// form (the `stacks` command's data, `periscope stacks --json`) and its text form. Both the
// agent (in-process capture) and the viewer (ptrace) produce and print these.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiler/symbolizer.h"

namespace periscope {

inline constexpr size_t kMaxStackDepth = 256;  // deeper stacks are cut, and say so

struct ThreadStack {
  pid_t tid = 0;
  std::string name;
  std::string state;
  std::vector<Frame> frames;  // innermost first
  bool truncated = false;     // cut at the depth limit
  std::string error;          // why there are no frames (timed out, exited, ...)
  // Unsymbolized, as captured (pcs[0] the interrupted pc, the rest return addresses): what the
  // agent sends so that the viewer symbolizes outside the host's memory. Empty once symbolized.
  std::vector<uint64_t> pcs;
  std::string note;  // how the stack was read when not the usual way ("by ptrace: ...")
};

// One address from a capture, before symbolizing.
struct RawFrame {
  uint64_t pc = 0;
  bool return_address = true;  // false for the interrupted pc (frame 0, signal frames)
};

// Symbolizes raw frames, expanding inlined calls into frames of their own.
std::vector<Frame> symbolize_frames(const std::vector<RawFrame>& raw, Symbolizer& symbolizer);
// Symbolizes a stack captured by signal (pcs[0] interrupted, the rest return addresses).
std::vector<Frame> symbolize_captured(const std::vector<uint64_t>& pcs, Symbolizer& symbolizer);

nlohmann::json frames_to_json(const std::vector<Frame>& frames);
std::vector<Frame> frames_from_json(const nlohmann::json& frames);  // throws on malformed input
nlohmann::json stacks_to_json(const std::vector<ThreadStack>& stacks);
std::vector<ThreadStack> stacks_from_json(const nlohmann::json& json);  // throws on malformed input
// Text for a terminal; template arguments and parameter lists are elided unless `full_names`.
std::string render_stacks(const std::vector<ThreadStack>& stacks, bool full_names = false);

}  // namespace periscope
