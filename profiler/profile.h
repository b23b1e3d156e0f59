// A symbolized profile, the way every output reads it: per stack (root first) a count of samples,
// with what was measured and how. The agent builds it from a RawProfile on its own thread; the
// viewer receives it as JSON and writes files (folded today; pprof, speedscope, HTML next).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace periscope {

struct ProfileStack {
  std::string thread;               // thread name (and tid), for per-thread views
  std::vector<std::string> frames;  // root first; inlined calls are frames of their own
  uint64_t count = 0;
};

struct Profile {
  std::string mode;   // "cpu" or "wall"
  int hz = 0;
  std::string clock;  // how samples were taken
  double seconds = 0;
  uint64_t samples = 0;
  uint64_t lost = 0;
  size_t threads = 0;
  std::vector<ProfileStack> stacks;
  std::vector<std::string> unsampled;  // "blocker (4242): blocks signal 64": threads left out, and why
  std::string problem;                 // why sampling stopped early (or never began), or empty
};

// Why a profile holds no samples, in words for the user (empty when it has some).
std::string why_no_samples(const Profile& profile);

nlohmann::json profile_to_json(const Profile& profile);
Profile profile_from_json(const nlohmann::json& json);  // throws on malformed input

// Collapsed stacks, one "root;...;leaf COUNT" line per stack (FlameGraph, speedscope); with
// `per_thread` the thread is the root frame.
std::string to_folded(const Profile& profile, bool per_thread);

}  // namespace periscope
