// The agent's profiling session and its manhole command:
//   profile start [cpu|wall] [HZ]   begin sampling (default cpu, 99 Hz)
//   profile stop                    stop; the profile stays for dump
//   profile status                  mode, rate, seconds, samples taken and lost, threads
//   profile dump                    the profile so far, symbolized (JSON data, folded text)
// Everything runs on the io thread: a timer drives the sampler (new and dead threads, wall-clock
// ticks, draining the handlers' ring); symbolizing happens at dump.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "manhole/command_registry.h"
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
void stop_profiling(Profiling& profiling);  // io thread, at agent stop
// Stops the sampler without touching the io_context (whose descriptors the host took).
void abandon_profiling(Profiling& profiling);

[[nodiscard]] std::string add_profile_command(manhole::CommandRegistry& registry);

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
