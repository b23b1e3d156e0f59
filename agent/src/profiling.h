// The agent's profiling session: one sampler, driven by a timer on the io thread (new and dead
// threads, wall-clock ticks, draining the handlers' ring); symbolizing happens when a profile is
// asked for. The `profile` command (commands/profile_commands.cpp), /debug/pprof/profile and
// PERISCOPE_PROFILE use it. Everything here runs on the io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <vector>

#include "profiler/profile.h"
#include "profiler/capture/sampler.h"

namespace boost::asio {
class io_context;
}

namespace periscope::agent {

class Profiling;
struct ProfilingDeleter {
  void operator()(Profiling* p) const;
};
using ProfilingPtr = std::unique_ptr<Profiling, ProfilingDeleter>;
ProfilingPtr make_profiling(boost::asio::io_context& io, bool timers_only);
void shut_down_profiling(Profiling& profiling);  // io thread, at agent stop: PERISCOPE_PROFILE's is lost
// Stops the sampler without touching the io_context (whose descriptors the host took).
void abandon_profiling(Profiling& profiling);

const char* sample_mode_name(SampleMode mode);  // "cpu", "wall"

// Starts sampling; empty on success, else why not (one is running, the sampler cannot start).
[[nodiscard]] std::string start_profile(Profiling& profiling, SampleMode mode, int hz);
void stop_profile(Profiling& profiling);  // the profile stays for symbolized_profile()
// Stops the profile running now when called, unless it was stopped and another started since
// (for the client that owns it: its session ends, its time is up).
std::function<void()> stopper_of_running_profile(Profiling& profiling);
// The running profile stops by itself after `duration` (`profile start --for SECONDS`).
void stop_running_profile_after(Profiling& profiling, std::chrono::seconds duration);

// The running (or last) profile at a glance.
struct ProfileStatus {
  bool running = false;
  SampleMode mode = SampleMode::kCpu;
  int hz = 0;
  std::string clock;  // how samples are taken, in words
  double seconds = 0;
  uint64_t samples = 0;
  uint64_t lost = 0;
  size_t threads = 0;
  uint64_t signals = 0;
  int signal = 0;
  std::string problem;  // why sampling stopped by itself, if it did
  size_t unsampled = 0;  // threads that could not be sampled
  double handler_ns_p50 = 0;
  double handler_ns_p99 = 0;
};
ProfileStatus profile_status(Profiling& profiling);

// The profile so far: named by the agent's own symbolizer, or with addresses only (one list of
// addresses per stack, in order, in *pcs) for a viewer that names them itself.
Profile symbolized_profile(Profiling& profiling);
Profile unsymbolized_profile(Profiling& profiling, std::vector<std::vector<uint64_t>>* pcs);

// What every profile of this agent has counted so far, for metrics (io thread).
struct ProfilingTotals {
  uint64_t samples = 0;
  uint64_t lost = 0;
  uint64_t signals = 0;
};
ProfilingTotals profiling_totals(Profiling& profiling);

// Profiles for `duration` and then hands the symbolized profile to `done`, or why there is
// none (a profile is already running; the sampler cannot start). io thread; `done` runs there.
void profile_for(Profiling& profiling, SampleMode mode, int hz, std::chrono::milliseconds duration,
                 std::function<void(std::string error, Profile profile)> done);

// PERISCOPE_PROFILE: starts profiling now (on the io thread) and writes the profile at exit.
// Empty on success (or when not asked for), else why not.
[[nodiscard]] std::string start_whole_run_profile(boost::asio::io_context& io, Profiling& profiling,
                                                  const std::string& spec, const std::string& out);

}  // namespace periscope::agent
