// The agent's profiling: one sampler, driven by a timer on the io thread (new and dead threads,
// wall-clock ticks, draining the handlers' ring), shared by every consumer through windows;
// symbolizing happens when a profile is asked for. The `profile` command (commands/profile_commands.cpp), /debug/pprof/profile and
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

// One sampler, many consumers: each `record`, `top`, pprof scrape or whole-run profile joins it
// and gets a window of its own (the samples from when it joined to when it left); the sampler
// runs while any window does. Windows are named by id; 0 is none.
using ProfileId = uint64_t;

// Opens a window, starting the sampler when it is idle. Empty on success, else why not (the
// sampler runs in the other mode; it cannot start). A window joining a running sampler gets its
// rate; *note then says so. `session`: the manhole session that owns it, 0 for none.
[[nodiscard]] std::string start_profile(Profiling& profiling, SampleMode mode, int hz, uint64_t session,
                                        ProfileId* id, std::string* note);
// Closes window `id` (what it saw stays for dump); false if it was not running. The sampler stops
// with the last window.
bool stop_profile(Profiling& profiling, ProfileId id);
// Window `id` closes by itself after `duration` (`profile start --for SECONDS`).
void stop_profile_after(Profiling& profiling, ProfileId id, std::chrono::seconds duration);
// The newest window owned by `session` (0: a timed or whole-run one, owned by no session;
// kAnySession: any), running or not; 0 if there is none. running_only: only windows still open.
constexpr uint64_t kAnySession = ~uint64_t{0};
ProfileId find_profile(Profiling& profiling, uint64_t session, bool running_only);
size_t running_profiles(Profiling& profiling);
// The window closed last (0 if none is kept): what a client without a profile of its own reads.
ProfileId last_closed_profile(Profiling& profiling);

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
ProfileStatus profile_status(Profiling& profiling, ProfileId id);

// Window `id` so far: named by the agent's own symbolizer, or with addresses only (one list of
// addresses per stack, in order, in *pcs) for a viewer that names them itself.
Profile symbolized_profile(Profiling& profiling, ProfileId id);
Profile unsymbolized_profile(Profiling& profiling, ProfileId id, std::vector<std::vector<uint64_t>>* pcs);

// What every profile of this agent has counted so far, for metrics (io thread).
struct ProfilingTotals {
  uint64_t samples = 0;
  uint64_t lost = 0;
  uint64_t signals = 0;
  uint64_t lost_buffer_full = 0, lost_in_handler = 0, lost_missed_ticks = 0;
  uint64_t handler_ns = 0;
  // Of the sampler's current (or last) run: threads it could not sample, the handler's own time
  // per sample, and that time as a share of the process's CPU time.
  size_t unsampled_threads = 0;
  double handler_p50_ns = 0, handler_p99_ns = 0;
  double overhead_ratio = 0;
};
ProfilingTotals profiling_totals(Profiling& profiling);
// io thread: `observer` hears of every sample as it is counted (nullptr: nobody).
void observe_samples(Profiling& profiling, Sampler::Observer observer);

// Profiles for `duration` in a window of its own and then hands the symbolized profile to `done`,
// or why there is none (the sampler runs in the other mode; it cannot start). The returned
// function ends it early (the client went away): `done` is then not called. io thread; `done`
// runs there.
std::function<void()> profile_for(Profiling& profiling, SampleMode mode, int hz, std::chrono::milliseconds duration,
                                  std::function<void(std::string error, Profile profile)> done);

// PERISCOPE_PROFILE: starts profiling now (on the io thread) and writes the profile at exit.
// Empty on success (or when not asked for), else why not.
[[nodiscard]] std::string start_whole_run_profile(boost::asio::io_context& io, Profiling& profiling,
                                                  const std::string& spec, const std::string& out);

}  // namespace periscope::agent
