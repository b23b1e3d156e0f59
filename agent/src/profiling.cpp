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
#include <set>
#include <random>
#include <unordered_map>
#include <unistd.h>

#include "agent/src/logging.h"
#include "agent/src/own_symbolizer.h"
#include "agent/src/watchdog/request_table.h"
#include "profiler/function_names.h"
#include "profiler/profile.h"
#include "profiler/profile_formats.h"
#include "profiler/profile_symbolize.h"
#include "profiler/capture/sampler.h"
#include "profiler/thread_list.h"
#include "profiler/sampling_rate.h"

namespace periscope::agent {

namespace asio = boost::asio;

// One consumer's share of the sampler: what it counted when it joined (subtracted from what the
// sampler counts now), or, once closed, its own frozen copy.
struct Window {
  ProfileId id = 0;
  uint64_t session = 0;
  bool running = true;
  std::chrono::steady_clock::time_point joined;
  uint64_t base_samples = 0, base_lost = 0, base_signals = 0;
  RawProfile::Accounting base_accounting;
  std::unordered_map<RawProfile::Key, uint64_t, RawProfile::KeyHash> base_stacks;
  RawProfile frozen;
  uint64_t frozen_signals = 0;
};

// A window's share of the sampler's counts: what was counted since it joined.
RawProfile::Accounting minus(const RawProfile::Accounting& now, const RawProfile::Accounting& base) {
  auto less = [](uint64_t a, uint64_t b) { return a - std::min(a, b); };
  RawProfile::Accounting out;
  out.lost_buffer_full = less(now.lost_buffer_full, base.lost_buffer_full);
  out.lost_in_handler = less(now.lost_in_handler, base.lost_in_handler);
  out.lost_missed_ticks = less(now.lost_missed_ticks, base.lost_missed_ticks);
  out.handler_ns = less(now.handler_ns, base.handler_ns);
  out.process_cpu_s = std::max(0.0, now.process_cpu_s - base.process_cpu_s);
  return out;
}

constexpr size_t kClosedWindowsKept = 8;
constexpr uint64_t kWholeRunOwner = kAnySession - 1;  // PERISCOPE_PROFILE's: no client stops it
constexpr uint64_t kHttpOwner = kAnySession - 2;      // a pprof scrape's: it ends with its request  // the newest closed windows, for a later dump

class Profiling {
 public:
  Profiling(asio::io_context& io, bool timers_only) : io_(io), timer_(io), timers_only_(timers_only) {}

  std::string join(SampleMode mode, int hz, uint64_t session, ProfileId* id, std::string* note) {
    sync();
    if (sampler_.running()) {
      const RawProfile& now = sampler_.peek();
      if (now.mode != mode) {
        return std::string("a ") + sample_mode_name(now.mode) + " profile is running for " +
               std::to_string(running_count()) + " client(s); a " + sample_mode_name(mode) +
               " profile can start when they end";
      }
      if (now.hz != hz) {
        *note = "joined the running " + std::string(sample_mode_name(mode)) + " profile at its " +
                std::to_string(now.hz) + " Hz (asked for " + std::to_string(hz) + ")";
      }
    } else {
      ProfilingTotals before = totals();  // the sampler's counts restart from zero
      if (auto err = sampler_.start(mode, hz, timers_only_); !err.empty()) return err;
      earlier_ = before;
      schedule();
    }
    const RawProfile& now = sampler_.peek();
    Window w;
    w.id = ++last_id_;
    w.session = session;
    w.joined = std::chrono::steady_clock::now();
    w.base_samples = now.samples;
    w.base_lost = now.lost;
    w.base_signals = sampler_.signals_sent();
    w.base_accounting = now.accounting;
    w.base_stacks.reserve(now.stacks.size());
    for (const auto& [key, count] : now.stacks) w.base_stacks.emplace(key, count);
    windows_.emplace(w.id, std::move(w));
    forget_old_windows();
    *id = last_id_;
    return {};
  }

  bool leave(ProfileId id) {
    sync();
    auto it = windows_.find(id);
    if (it == windows_.end() || !it->second.running) return false;
    close(it->second);
    last_closed_ = id;
    if (running_count() == 0) {
      sampler_.stop();
      timer_.cancel();
    }
    forget_old_windows();
    return true;
  }

  // Window `id` as a profile of its own; null if there is no such window.
  const RawProfile* view(ProfileId id, uint64_t* signals) {
    sync();
    auto it = windows_.find(id);
    if (it == windows_.end()) return nullptr;
    if (!it->second.running) {
      *signals = it->second.frozen_signals;
      return &it->second.frozen;
    }
    scratch_ = window_of(it->second, signals);
    return &scratch_;
  }

  bool running(ProfileId id) {
    sync();
    auto it = windows_.find(id);
    return it != windows_.end() && it->second.running;
  }

  ProfileId find(uint64_t session, bool running_only) {
    sync();
    for (auto it = windows_.rbegin(); it != windows_.rend(); ++it) {
      if (session != kAnySession && it->second.session != session) continue;
      if (running_only && !it->second.running) continue;
      return it->first;
    }
    return 0;
  }

  ProfileId last_closed() const { return windows_.count(last_closed_) ? last_closed_ : 0; }

  size_t running_count() const {
    size_t n = 0;
    for (const auto& [id, w] : windows_) n += w.running ? 1 : 0;
    return n;
  }

  ProfilingTotals totals() {
    const RawProfile& p = sampler_.peek();
    const RawProfile::Accounting& a = p.accounting;
    ProfilingTotals t = earlier_;
    t.samples += p.samples;
    t.lost += p.lost;
    t.signals += sampler_.signals_sent();
    t.lost_buffer_full += a.lost_buffer_full;
    t.lost_in_handler += a.lost_in_handler;
    t.lost_missed_ticks += a.lost_missed_ticks;
    t.handler_ns += a.handler_ns;
    t.unsampled_threads = p.unsampled.size();
    t.handler_p50_ns = Sampler::handler_cost_ns(0.5);
    t.handler_p99_ns = Sampler::handler_cost_ns(0.99);
    t.overhead_ratio = a.process_cpu_s > 0 ? static_cast<double>(a.handler_ns) / 1e9 / a.process_cpu_s : 0;
    return t;
  }

  asio::io_context& io() { return io_; }

  void stop_all() {
    for (auto& [id, w] : windows_) {
      if (w.running) close(w);
    }
    sampler_.stop();
    timer_.cancel();
  }

  Sampler& sampler() { return sampler_; }

 private:
  RawProfile window_of(const Window& w, uint64_t* signals) {
    const RawProfile& now = sampler_.peek();
    RawProfile out;
    out.mode = now.mode;
    out.hz = now.hz;
    out.clock = now.clock;
    out.started = w.joined;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - w.joined).count();
    if (!sampler_.running()) {  // it stopped at now.started + now.seconds
      out.seconds = std::max(0.0, now.seconds - std::chrono::duration<double>(w.joined - now.started).count());
    }
    out.samples = now.samples - std::min(now.samples, w.base_samples);
    out.lost = now.lost - std::min(now.lost, w.base_lost);
    out.unsampled = now.unsampled;
    out.problem = now.problem;
    out.accounting = minus(now.accounting, w.base_accounting);
    for (const auto& [key, count] : now.stacks) {
      auto base = w.base_stacks.find(key);
      const uint64_t before = base == w.base_stacks.end() ? 0 : base->second;
      if (count > before) out.stacks.emplace(key, count - before);
    }
    *signals = sampler_.signals_sent() - std::min(sampler_.signals_sent(), w.base_signals);
    return out;
  }

  void close(Window& w) {
    w.frozen = window_of(w, &w.frozen_signals);
    w.running = false;
    w.base_stacks = {};
  }

  // The sampler stopped by itself (the host took its signal): every window ends with it.
  void sync() {
    if (sampler_.running()) return;
    bool closed = false;
    for (auto& [id, w] : windows_) {
      if (w.running) close(w), closed = true;
    }
    if (closed) forget_old_windows();
  }

  void forget_old_windows() {
    size_t closed = 0;
    for (auto it = windows_.rbegin(); it != windows_.rend(); ++it) closed += it->second.running ? 0 : 1;
    for (auto it = windows_.begin(); it != windows_.end() && closed > kClosedWindowsKept;) {
      if (it->second.running) {
        ++it;
        continue;
      }
      it = windows_.erase(it);
      --closed;
    }
  }

  void schedule() {
    const auto& p = sampler_.peek();
    auto interval = p.mode == SampleMode::kWall ? std::chrono::microseconds(1000000 / p.hz)
                                                : std::chrono::microseconds(50000);
    // Wall ticks, like CPU samples (sampler_linux.cpp), come at random intervals of 0.5-1.5 times
    // the mean: a fixed grid would phase-lock with the host's periodic work.
    if (p.mode == SampleMode::kWall) {
      interval = std::chrono::microseconds(interval.count() / 2 +
                                           static_cast<int64_t>(jitter_() % static_cast<uint64_t>(interval.count() + 1)));
    }
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
  ProfilingTotals earlier_;  // of the sampler's runs before this one
  std::map<ProfileId, Window> windows_;  // open ones and the newest closed ones, oldest first
  ProfileId last_id_ = 0;
  ProfileId last_closed_ = 0;
  RawProfile scratch_;  // an open window's view, valid until the next call
  std::minstd_rand jitter_{static_cast<std::minstd_rand::result_type>(::getpid())};
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
  profiling.stop_all();
}
void abandon_profiling(Profiling& profiling) {
  forget_whole_run(profiling);
  profiling.sampler().stop();
}
ProfilingTotals profiling_totals(Profiling& profiling) { return profiling.totals(); }
void observe_samples(Profiling& profiling, Sampler::Observer observer) { profiling.sampler().set_observer(std::move(observer)); }

namespace {

std::string thread_label(pid_t tid, std::map<pid_t, std::string>& cache) {
  auto it = cache.find(tid);
  if (it != cache.end()) return it->second;
  return cache[tid] = own_thread_name(tid).value_or("exited") + " (" + std::to_string(tid) + ")";
}

// The profile's header, thread and request names; the stacks' frames come from `name_stack`.
template <typename NameStack>
Profile profile_of(const RawProfile& raw, size_t threads, NameStack name_stack) {
  Profile p;
  p.mode = sample_mode_name(raw.mode);
  p.hz = raw.hz;
  p.clock = raw.clock;
  p.seconds = raw.seconds;
  p.samples = raw.samples;
  p.lost = raw.lost;
  // The threads the profile covers: those it has samples of and those it had to leave out. The
  // sampler's current list is empty once sampling stopped ("0 threads" for a 7-thread profile).
  std::set<pid_t> covered;
  for (const auto& [key, count] : raw.stacks) covered.insert(key.tid);
  for (const auto& [tid, why] : raw.unsampled) covered.insert(tid);
  p.threads = std::max(threads, covered.size());
  p.problem = raw.problem;
  p.costs.lost_buffer_full = raw.accounting.lost_buffer_full;
  p.costs.lost_in_handler = raw.accounting.lost_in_handler;
  p.costs.lost_missed_ticks = raw.accounting.lost_missed_ticks;
  p.costs.handler_s = static_cast<double>(raw.accounting.handler_ns) / 1e9;
  p.costs.process_cpu_s = raw.accounting.process_cpu_s;
  p.costs.handler_p50_us = Sampler::handler_cost_ns(0.5) / 1000;  // of the sampler's run
  p.costs.handler_p99_us = Sampler::handler_cost_ns(0.99) / 1000;
  std::map<pid_t, std::string> names;
  for (const auto& [tid, why] : raw.unsampled) p.unsampled.push_back(thread_label(tid, names) + ": " + why);
  for (const auto& [key, count] : raw.stacks) {
    p.stacks.push_back({thread_label(key.tid, names), name_stack(key.pcs), count, request_name_of_label(key.label)});
  }
  return p;
}

Profile symbolize(const RawProfile& raw, size_t threads) {
  auto held = own_symbolizer_lock();
  Symbolizer& symbolizer = own_symbolizer(held);
  return profile_of(raw, threads, [&](const std::vector<uint64_t>& pcs) { return profile_frame_names(pcs, symbolizer); });
}

}  // namespace

ProfileStatus profile_status(Profiling& profiling, ProfileId id) {
  uint64_t signals = 0;
  const RawProfile* p = profiling.view(id, &signals);
  if (!p) return {};
  Sampler& s = profiling.sampler();
  return {profiling.running(id), p->mode, p->hz, p->clock, p->seconds, p->samples, p->lost, s.threads(), signals,
          Sampler::signal_number(), p->problem, p->unsampled.size(), Sampler::handler_cost_ns(0.5),
          Sampler::handler_cost_ns(0.99)};
}

std::string start_profile(Profiling& profiling, SampleMode mode, int hz, uint64_t session, ProfileId* id,
                          std::string* note) {
  return profiling.join(mode, hz, session, id, note);
}

bool stop_profile(Profiling& profiling, ProfileId id) { return profiling.leave(id); }

void stop_profile_after(Profiling& profiling, ProfileId id, std::chrono::seconds duration) {
  auto timer = std::make_shared<asio::steady_timer>(profiling.io(), duration);
  timer->async_wait([timer, &profiling, id](const boost::system::error_code& ec) {
    if (!ec) profiling.leave(id);
  });
}

ProfileId find_profile(Profiling& profiling, uint64_t session, bool running_only) {
  return profiling.find(session, running_only);
}

size_t running_profiles(Profiling& profiling) { return profiling.running_count(); }
ProfileId last_closed_profile(Profiling& profiling) { return profiling.last_closed(); }

Profile symbolized_profile(Profiling& profiling, ProfileId id) {
  uint64_t signals = 0;
  const RawProfile* p = profiling.view(id, &signals);
  return p ? symbolize(*p, profiling.sampler().threads()) : Profile{};
}

Profile unsymbolized_profile(Profiling& profiling, ProfileId id, std::vector<std::vector<uint64_t>>* pcs_of) {
  uint64_t signals = 0;
  const RawProfile* p = profiling.view(id, &signals);
  if (!p) return {};
  return profile_of(*p, profiling.sampler().threads(), [&](const std::vector<uint64_t>& pcs) {
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
  ProfileId id = 0;  // its window, once started (io thread)
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
      const ProfileId id = g_whole_run.id;
      profiling->leave(id);
      Profile p = symbolized_profile(*profiling, id);
      std::string error;
      std::string format = profile_format_for(out, &error);
      std::ofstream file(out, std::ios::binary | std::ios::trunc);
      file << render_profile(p, format, {});
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
    std::string note;
    ProfileId id = 0;
    if (auto err = profiling.join(mode, hz, kWholeRunOwner, &id, &note); !err.empty()) {
      log_line("PERISCOPE_PROFILE: " + err);
    }
    if (g_whole_run.profiling == &profiling) g_whole_run.id = id;
  });
  return {};
}

std::function<void()> profile_for(Profiling& profiling, SampleMode mode, int hz, std::chrono::milliseconds duration,
                                  std::function<void(std::string error, Profile profile)> done) {
  ProfileId id = 0;
  std::string note;
  if (auto err = profiling.join(mode, hz, kHttpOwner, &id, &note); !err.empty()) {
    done(err, {});
    return [] {};
  }
  auto timer = std::make_shared<asio::steady_timer>(profiling.io(), duration);
  auto ended_early = std::make_shared<bool>(false);  // io thread only
  timer->async_wait([timer, &profiling, id, ended_early, done = std::move(done)](const boost::system::error_code& ec) {
    if (ec || *ended_early) return;  // nobody wants it (the timer may have fired just before)
    profiling.leave(id);
    done({}, symbolized_profile(profiling, id));
  });
  return [timer, &profiling, id, ended_early] {
    *ended_early = true;
    timer->cancel();
    profiling.leave(id);
  };
}

}  // namespace periscope::agent
