#include "agent/src/profiling.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <unistd.h>

#include "agent/src/logging.h"
#include "agent/src/own_symbolizer.h"
#include "profiler/function_names.h"
#include "profiler/profile.h"
#include "profiler/profile_formats.h"
#include "profiler/profile_symbolize.h"
#include "profiler/capture/sampler.h"
#include "profiler/thread_list.h"
#include "profiler/sampling_rate.h"

namespace periscope::agent {

namespace asio = boost::asio;

class Profiling {
 public:
  Profiling(asio::io_context& io, bool timers_only) : io_(io), timer_(io), timers_only_(timers_only) {}

  std::string start(SampleMode mode, int hz) {
    if (sampler_.running()) return "a profile is already running; 'profile stop' first";
    ProfilingTotals before = totals();  // the sampler's counts restart from zero
    if (auto err = sampler_.start(mode, hz, timers_only_); !err.empty()) return err;
    earlier_ = before;
    ++generation_;
    schedule();
    return {};
  }

  ProfilingTotals totals() {
    const RawProfile& p = sampler_.peek();
    return {earlier_.samples + p.samples, earlier_.lost + p.lost, earlier_.signals + sampler_.signals_sent()};
  }

  // Which start() the running profile came from: a timed profile stops only its own.
  uint64_t generation() const { return generation_; }
  asio::io_context& io() { return io_; }

  void stop() {
    sampler_.stop();
    timer_.cancel();
  }

  Sampler& sampler() { return sampler_; }

 private:
  void schedule() {
    const auto& p = sampler_.peek();
    auto interval = p.mode == SampleMode::kWall ? std::chrono::microseconds(1000000 / p.hz)
                                                : std::chrono::microseconds(50000);
    // On a fixed grid, so a tick's own cost does not stretch the period; after a stall, restart
    // from now rather than fire the missed ticks in a burst (the sampler counts them as lost).
    auto now = asio::steady_timer::clock_type::now();
    auto next = timer_.expiry() + interval;
    timer_.expires_at(next + interval < now ? now + interval : next);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !sampler_.running()) return;
      sampler_.tick();
      schedule();
    });
  }

  asio::io_context& io_;
  Sampler sampler_;
  asio::steady_timer timer_;
  bool timers_only_;
  ProfilingTotals earlier_;  // of the profiles before this one
  uint64_t generation_ = 0;
};

void ProfilingDeleter::operator()(Profiling* p) const { delete p; }
ProfilingPtr make_profiling(asio::io_context& io, bool timers_only) {
  return ProfilingPtr(new Profiling(io, timers_only));
}
const char* sample_mode_name(SampleMode m) { return m == SampleMode::kWall ? "wall" : "cpu"; }

namespace {
void forget_whole_run(const Profiling& profiling);
}  // namespace

void shut_down_profiling(Profiling& profiling) {
  forget_whole_run(profiling);  // this agent is stopping: its io thread will not write the profile
  profiling.stop();
}
void abandon_profiling(Profiling& profiling) {
  forget_whole_run(profiling);
  profiling.sampler().stop();
}
ProfilingTotals profiling_totals(Profiling& profiling) { return profiling.totals(); }

namespace {

std::string thread_label(pid_t tid, std::map<pid_t, std::string>& cache) {
  auto it = cache.find(tid);
  if (it != cache.end()) return it->second;
  return cache[tid] = own_thread_name(tid).value_or("exited") + " (" + std::to_string(tid) + ")";
}

// The profile's header and thread names; the stacks' frames come from `name_stack`.
template <typename NameStack>
Profile profile_of(const RawProfile& raw, size_t threads, NameStack name_stack) {
  Profile p;
  p.mode = sample_mode_name(raw.mode);
  p.hz = raw.hz;
  p.clock = raw.clock;
  p.seconds = raw.seconds;
  p.samples = raw.samples;
  p.lost = raw.lost;
  p.threads = threads;
  p.problem = raw.problem;
  std::map<pid_t, std::string> names;
  for (const auto& [tid, why] : raw.unsampled) p.unsampled.push_back(thread_label(tid, names) + ": " + why);
  for (const auto& [key, count] : raw.stacks) p.stacks.push_back({thread_label(key.tid, names), name_stack(key.pcs), count});
  return p;
}

Profile symbolize(const RawProfile& raw, size_t threads) {
  auto held = own_symbolizer_lock();
  Symbolizer& symbolizer = own_symbolizer(held);
  return profile_of(raw, threads, [&](const std::vector<uint64_t>& pcs) { return profile_frame_names(pcs, symbolizer); });
}

}  // namespace

ProfileStatus profile_status(Profiling& profiling) {
  Sampler& s = profiling.sampler();
  const RawProfile& p = s.peek();
  return {s.running(), p.mode, p.hz, p.clock, p.seconds, p.samples, p.lost, s.threads(), s.signals_sent(),
          Sampler::signal_number(), p.problem, p.unsampled.size(), Sampler::handler_cost_ns(0.5),
          Sampler::handler_cost_ns(0.99)};
}

std::string start_profile(Profiling& profiling, SampleMode mode, int hz) { return profiling.start(mode, hz); }

void stop_profile(Profiling& profiling) { profiling.stop(); }

std::function<void()> stopper_of_running_profile(Profiling& profiling) {
  return [&profiling, generation = profiling.generation()] {
    if (profiling.generation() == generation && profiling.sampler().running()) profiling.stop();
  };
}

void stop_running_profile_after(Profiling& profiling, std::chrono::seconds duration) {
  auto timer = std::make_shared<asio::steady_timer>(profiling.io(), duration);
  timer->async_wait([timer, stop = stopper_of_running_profile(profiling)](const boost::system::error_code& ec) {
    if (!ec) stop();
  });
}

Profile symbolized_profile(Profiling& profiling) {
  Sampler& s = profiling.sampler();
  return symbolize(s.peek(), s.threads());
}

Profile unsymbolized_profile(Profiling& profiling, std::vector<std::vector<uint64_t>>* pcs_of) {
  Sampler& s = profiling.sampler();
  return profile_of(s.peek(), s.threads(), [&](const std::vector<uint64_t>& pcs) {
    pcs_of->push_back(pcs);
    return std::vector<std::string>{};
  });
}

namespace {

struct WholeRun {
  asio::io_context* io = nullptr;
  Profiling* profiling = nullptr;
  std::string out;
  pid_t pid = 0;
};
WholeRun g_whole_run;  // set once, read by the exit handler

void forget_whole_run(const Profiling& profiling) {
  if (g_whole_run.profiling == &profiling) g_whole_run = {};
}

bool parse_spec(const std::string& spec, SampleMode* mode, int* hz) {
  std::string kind = spec.substr(0, spec.find(':'));
  if (kind == "cpu") *mode = SampleMode::kCpu;
  else if (kind == "wall") *mode = SampleMode::kWall;
  else return false;
  *hz = kDefaultSamplingHz;
  if (spec.find(':') == std::string::npos) return true;
  char* end = nullptr;
  std::string rate = spec.substr(spec.find(':') + 1);
  *hz = static_cast<int>(std::strtol(rate.c_str(), &end, 10));
  return !rate.empty() && *end == '\0' && valid_sampling_hz(*hz);
}

// The profile is stopped, symbolized and written on the io thread; the exiting thread waits for
// it (bounded: a wedged agent must not hang the exit).
void write_whole_run_profile_at_exit() {
  WholeRun& w = g_whole_run;
  if (!w.io || w.pid != ::getpid()) return;  // no profile, or a fork child's copy of the parent's
  auto done = std::make_shared<std::promise<std::string>>();
  auto result = done->get_future();
  asio::post(*w.io, [done, profiling = w.profiling, out = w.out] {
    try {
      profiling->stop();
      Sampler& s = profiling->sampler();
      Profile p = symbolize(s.peek(), s.threads());
      std::string error;
      std::string format = profile_format_for(out, &error);
      std::ofstream file(out, std::ios::binary | std::ios::trunc);
      file << render_profile(p, format, false);
      file.close();  // before the exiting thread hears it is done: it will not wait for us again
      done->set_value(!file.fail() ? "wrote the profile to " + out + ": " + std::to_string(p.samples) + " samples, " +
                                 std::to_string(p.lost) + " lost, " + std::to_string(p.seconds).substr(0, 5) + " s"
                           : "cannot write the profile to " + out);
    } catch (const std::exception& e) {
      done->set_value(std::string("profile not written: ") + e.what());
    }
  });
  if (result.wait_for(std::chrono::seconds(10)) == std::future_status::ready) log_line(result.get());
  else log_line("profile not written: the agent did not finish within 10 s");
}

}  // namespace

std::string start_whole_run_profile(asio::io_context& io, Profiling& profiling, const std::string& spec,
                                    const std::string& out) {
  if (spec.empty()) return {};
  SampleMode mode;
  int hz;
  if (!parse_spec(spec, &mode, &hz)) {
    return "PERISCOPE_PROFILE='" + spec + "': expected cpu[:HZ] or wall[:HZ] (HZ " + sampling_hz_range() + ")";
  }
  std::string path = out.empty() ? "periscope-" + std::to_string(::getpid()) + ".folded" : out;
  std::string error;
  if (profile_format_for(path, &error).empty()) return "PERISCOPE_PROFILE_OUT=" + error;
  g_whole_run = {&io, &profiling, path, ::getpid()};
  static bool registered = (std::atexit(write_whole_run_profile_at_exit) == 0);
  (void)registered;
  asio::post(io, [&profiling, mode, hz] {
    if (auto err = profiling.start(mode, hz); !err.empty()) log_line("PERISCOPE_PROFILE: " + err);
  });
  return {};
}

void profile_for(Profiling& profiling, SampleMode mode, int hz, std::chrono::milliseconds duration,
                 std::function<void(std::string error, Profile profile)> done) {
  if (auto err = profiling.start(mode, hz); !err.empty()) return done(err, {});
  auto timer = std::make_shared<asio::steady_timer>(profiling.io(), duration);
  timer->async_wait([timer, &profiling, generation = profiling.generation(), done = std::move(done)](
                        const boost::system::error_code&) {
    Sampler& s = profiling.sampler();
    if (profiling.generation() != generation) return done("the profile was stopped and another started", {});
    if (s.running()) profiling.stop();
    done({}, symbolize(s.peek(), s.threads()));
  });
}


}  // namespace periscope::agent
