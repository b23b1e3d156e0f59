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
  std::string request;              // the periscope::Request the thread was serving, or empty
};

// Frames put at the root of every stack, outermost first: the request's, then the thread's.
struct RootFrames {
  bool request = false;  // "[request NAME]", or "[no request]"
  bool thread = false;   // "NAME (TID)"
};

// What sampling cost the process and what it missed, as the agent counted it (zero when unknown:
// a profile read from a folded file).
struct SamplingCosts {
  uint64_t lost_buffer_full = 0;   // the sample ring was full
  uint64_t lost_in_handler = 0;    // a signal arrived while the handler ran on that thread
  uint64_t lost_missed_ticks = 0;  // wall mode: ticks the agent's thread could not give
  double handler_p50_us = 0;       // the sampling handler's own time per sample (unwinding included)
  double handler_p99_us = 0;
  double handler_s = 0;            // all handler time
  double process_cpu_s = 0;        // the process's CPU time over the same window
  bool known() const { return process_cpu_s > 0 || handler_s > 0; }
};

struct Profile {
  std::string mode;   // "cpu", "wall" or "heap"
  std::string unit = "samples";  // what a stack's count counts: samples, or a heap profile's bytes or objects
  int hz = 0;
  std::string clock;  // how samples were taken
  double seconds = 0;
  uint64_t samples = 0;
  uint64_t lost = 0;
  size_t threads = 0;
  std::vector<ProfileStack> stacks;
  std::vector<std::string> unsampled;  // "blocker (4242): blocks signal 64": threads left out, and why
  std::string problem;                 // why sampling stopped early (or never began), or empty
  SamplingCosts costs;
};

// "handler 1.2 us median, 2.9 us p99, 0.11% of the process's CPU time; lost 3 (ring full)", or
// empty when the profile does not know. The kernel's own part of a sample (timer interrupt and
// signal delivery) is not in it: see docs/profiling.md.
std::string describe_costs(const Profile& profile);

// Why a profile holds no samples, in words for the user (empty when it has some).
std::string why_no_samples(const Profile& profile);

// Bytes for people: "1.50 MiB", "812 B", with a sign when negative.
std::string human_bytes(double bytes);

nlohmann::json profile_to_json(const Profile& profile);
Profile profile_from_json(const nlohmann::json& json);  // throws on malformed input

// The root frames `roots` asks for, for one stack (folded names: no ';' or newline).
std::vector<std::string> root_frames(const ProfileStack& stack, RootFrames roots);

// Collapsed stacks, one "root;...;leaf COUNT" line per stack (FlameGraph, speedscope), under the
// root frames `roots` asks for.
std::string to_folded(const Profile& profile, RootFrames roots);

}  // namespace periscope
