#include "agent/src/profiling.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <map>

#include "agent/src/agent.h"
#include "agent/src/own_symbolizer.h"
#include "profiler/function_names.h"
#include "profiler/proc_reader.h"
#include "profiler/profile.h"
#include "profiler/sampler.h"

namespace periscope::agent {

namespace asio = boost::asio;
using manhole::Reply;

class Profiling {
 public:
  explicit Profiling(asio::io_context& io) : timer_(io) {}

  std::string start(SampleMode mode, int hz) {
    if (sampler_.running()) return "a profile is already running; 'profile stop' first";
    if (auto err = sampler_.start(mode, hz); !err.empty()) return err;
    schedule();
    return {};
  }

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
    timer_.expires_after(interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !sampler_.running()) return;
      sampler_.tick();
      schedule();
    });
  }

  Sampler sampler_;
  asio::steady_timer timer_;
};

void ProfilingDeleter::operator()(Profiling* p) const { delete p; }
ProfilingPtr make_profiling(asio::io_context& io) { return ProfilingPtr(new Profiling(io)); }
void stop_profiling(Profiling& profiling) { profiling.stop(); }

namespace {

const char* mode_name(SampleMode m) { return m == SampleMode::kWall ? "wall" : "cpu"; }

std::string thread_label(pid_t tid, std::map<pid_t, std::string>& cache) {
  auto it = cache.find(tid);
  if (it != cache.end()) return it->second;
  auto comm = proc::read_file("/proc/self/task/" + std::to_string(tid) + "/comm", 64);
  std::string name = comm ? comm->substr(0, comm->find('\n')) : "exited";
  return cache[tid] = name + " (" + std::to_string(tid) + ")";
}

Profile symbolize(const RawProfile& raw, size_t threads) {
  Profile p;
  p.mode = mode_name(raw.mode);
  p.hz = raw.hz;
  p.clock = raw.clock;
  p.seconds = raw.seconds;
  p.samples = raw.samples;
  p.lost = raw.lost;
  p.threads = threads;
  std::map<pid_t, std::string> names;
  Symbolizer& symbolizer = own_symbolizer();
  for (const auto& [key, count] : raw.stacks) {
    std::vector<std::string> frames;
    for (size_t i = 0; i < key.pcs.size(); ++i) {
      if (key.pcs[i] == 0) {
        frames.push_back("[cut at 256 frames]");
        continue;
      }
      for (const auto& f : symbolizer.symbolize(key.pcs[i], i != 0)) {
        frames.push_back(f.function.empty() ? describe_frame(f) : short_function_name(f.function));
      }
    }
    std::reverse(frames.begin(), frames.end());
    p.stacks.push_back({thread_label(key.tid, names), std::move(frames), count});
  }
  return p;
}

nlohmann::json status_json(Sampler& s) {
  const RawProfile& p = s.peek();
  return {{"running", s.running()}, {"mode", mode_name(p.mode)}, {"hz", p.hz},          {"clock", p.clock},
          {"seconds", p.seconds},   {"samples", p.samples},       {"lost", p.lost},      {"threads", s.threads()},
          {"signals", s.signals_sent()}, {"signal", Sampler::signal_number()}};
}

Reply profile(const manhole::Args& args) {
  Profiling* profiling = agent_profiling();
  if (!profiling) return Reply::failure("profile: the agent is not running");
  Sampler& sampler = profiling->sampler();
  const std::string& action = args[0];
  if (action == "start") {
    SampleMode mode = SampleMode::kCpu;
    int hz = 99;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "cpu") mode = SampleMode::kCpu;
      else if (args[i] == "wall") mode = SampleMode::kWall;
      else if (char* end = nullptr; (hz = static_cast<int>(std::strtol(args[i].c_str(), &end, 10))), *end != '\0') {
        return Reply::failure("profile start: expected cpu, wall or a rate in Hz, not '" + args[i] + "'");
      }
    }
    if (auto err = profiling->start(mode, hz); !err.empty()) return Reply::failure("profile start: " + err);
    auto data = status_json(sampler);
    std::string text = "profiling " + std::string(mode_name(mode)) + " at " + std::to_string(hz) + " Hz (" +
                       data["clock"].get<std::string>() + ")\n";  // before data is moved from
    return Reply::success(std::move(text), std::move(data));
  }
  if (action == "stop") {
    if (!sampler.running()) return Reply::failure("profile stop: no profile is running");
    profiling->stop();
    auto data = status_json(sampler);
    char line[160];
    std::snprintf(line, sizeof line, "stopped after %.1f s: %llu samples, %llu lost\n", data["seconds"].get<double>(),
                  static_cast<unsigned long long>(data["samples"].get<uint64_t>()),
                  static_cast<unsigned long long>(data["lost"].get<uint64_t>()));
    return Reply::success(line, std::move(data));
  }
  if (action == "status") {
    auto data = status_json(sampler);
    char line[200];
    std::snprintf(line, sizeof line, "%s: %s at %d Hz, %.1f s, %llu samples, %llu lost, %zu threads\n",
                  sampler.running() ? "running" : "stopped", data["mode"].get<std::string>().c_str(),
                  data["hz"].get<int>(), data["seconds"].get<double>(),
                  static_cast<unsigned long long>(data["samples"].get<uint64_t>()),
                  static_cast<unsigned long long>(data["lost"].get<uint64_t>()), sampler.threads());
    return Reply::success(line, std::move(data));
  }
  if (action == "dump") {
    Profile p = symbolize(sampler.peek(), sampler.threads());
    std::string text = to_folded(p, false);
    return Reply::success(std::move(text), profile_to_json(p));
  }
  return Reply::failure("profile: unknown action '" + action + "' (start, stop, status or dump)");
}

}  // namespace

std::string add_profile_command(manhole::CommandRegistry& registry) {
  manhole::Command command{"profile", "ACTION [ARGS...]",
                           "sampling profiler: start [cpu|wall] [HZ], stop, status, dump (folded)", profile};
  command.changes_state = true;
  return registry.add(std::move(command));
}

}  // namespace periscope::agent
