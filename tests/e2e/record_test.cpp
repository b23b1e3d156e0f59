// `periscope record` and the agent's `profile` command on a known workload.
#include <gtest/gtest.h>
#include <cmath>
#include <pthread.h>
#include <sched.h>
#include <filesystem>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

int perf_event_paranoid() {
  const std::string level = slurp("/proc/sys/kernel/perf_event_paranoid");
  return level.empty() ? -9 : std::stoi(level);
}

struct ProfiledHost {
  explicit ProfiledHost(const SocketDir& dir, Env extra = {}, uid_t run_as = kSameUser)
      : process({target_path("profile_target")}, with(dir, std::move(extra)), run_as) {
    auto ready = process.read_line();
    if (!ready || ready->rfind("ready ", 0) != 0) throw std::runtime_error("profile_target: " + process.stderr_text());
    if (!wait_until([&] { return file_exists(dir.socket_for(process.pid())); })) throw std::runtime_error("no agent");
  }
  static Env with(const SocketDir& dir, Env env) {
    env["LD_PRELOAD"] = agent_preload();
    env["PERISCOPE_SOCKET_DIR"] = dir.path();
    return env;
  }
  std::string pid() const { return std::to_string(process.pid()); }
  Process process;
};

// Samples per function among the lines of a folded file whose stacks contain it.
std::map<std::string, uint64_t> samples_by_function(const std::string& folded, const std::vector<std::string>& names,
                                                    uint64_t* total) {
  std::map<std::string, uint64_t> out;
  *total = 0;
  std::istringstream in(folded);
  for (std::string line; std::getline(in, line);) {
    auto space = line.rfind(' ');
    uint64_t count = std::stoull(line.substr(space + 1));
    *total += count;
    for (const auto& n : names) {
      if (line.find(n) != std::string::npos) out[n] += count;
    }
  }
  return out;
}

struct WorkShares {
  double a = 0, b = 0, c = 0;  // percent of the samples in work_a/b/c
  double work = 0;             // samples in any of them
  double of_total = 0;         // their fraction of all samples
};

// How a folded profile of profile_target splits between its three functions.
WorkShares work_shares(const std::string& folded) {
  uint64_t total = 0;
  auto by = samples_by_function(folded, {"work_a", "work_b", "work_c"}, &total);
  WorkShares s;
  s.work = static_cast<double>(by["work_a"] + by["work_b"] + by["work_c"]);
  if (s.work == 0) return s;
  s.a = 100 * static_cast<double>(by["work_a"]) / s.work;
  s.b = 100 * static_cast<double>(by["work_b"]) / s.work;
  s.c = 100 * static_cast<double>(by["work_c"]) / s.work;
  s.of_total = s.work / static_cast<double>(total);
  return s;
}

TEST(Record, CpuProfileMatchesTheKnownWorkload) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/cpu.folded";
  auto r = periscope({"record", host.pid(), "-d", "3", "--rate", "199", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("wrote " + out), std::string::npos) << r.err;
  const WorkShares shares = work_shares(slurp(out));
  ASSERT_GT(shares.work, 400) << "about 199 Hz x 3 s on the busy thread";
  EXPECT_NEAR(shares.a, 60, 6);
  EXPECT_NEAR(shares.b, 30, 6);
  EXPECT_NEAR(shares.c, 10, 4);
  EXPECT_GE(shares.of_total, 0.95) << "CPU time goes to the worker; the blocked thread costs none";
  // The profile accounts for itself: the handler's time per sample and its share of the CPU.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(sampling: handler ([0-9.]+) us median, ([0-9.]+) us p99, ([0-9.]+)% of the process's CPU time)")))
      << r.err;
  EXPECT_GT(std::stod(m[1]), 0.0);
  EXPECT_LE(std::stod(m[1]), std::stod(m[2]));
  EXPECT_GT(std::stod(m[3]), 0.0);
  EXPECT_LT(std::stod(m[3]), 10.0) << "the handler is not what the process spends its time on";
  auto view = periscope({"view", out});
  EXPECT_EQ(view.out.find("sampling:"), std::string::npos) << "a folded file does not know its costs";
}

TEST(Record, CpuTimersTakeOverWherePerfEventIsNotUsed) {
  SocketDir dir;
  ProfiledHost host(dir, {{"PERISCOPE_PROFILE_CLOCK", "timer"}});
  const std::string out = dir.path() + "/timers.folded";
  const double cpu_before = thread_cpu_seconds(host.process.pid(), "worker");
  auto r = periscope({"record", host.pid(), "-d", "3", "--rate", "99", "-o", out});
  const double cpu = thread_cpu_seconds(host.process.pid(), "worker") - cpu_before;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("per-thread CPU timer (timer_create)"), std::string::npos) << r.err;
  const WorkShares shares = work_shares(slurp(out));
  // CPU timers count the thread's CPU time: 99 Hz of what it got (all of a core alone, ~60% of
  // one on a loaded CI machine). Bounds: 4 standard deviations, as PeriodicWork.
  ASSERT_GT(shares.work, 0.4 * 99 * cpu) << cpu << " s of CPU (measured over more than the record)";
  ASSERT_GT(shares.work, 50) << cpu << " s of CPU";
  const double bound = 4 * 100 * std::sqrt(0.24 / shares.work);
  EXPECT_NEAR(shares.a, 60, bound);
  EXPECT_NEAR(shares.b, 30, bound);
}

// Work that repeats exactly every P us (6/3/1 tenths of it in work_a/b/c) against a rate whose
// period P divides: with a fixed period every sample would land at the same phase (one function
// 100%); randomized periods read 60/30/10. Bounds: 4 standard deviations of the share over n
// samples, 4 * sqrt(0.24 / n): 9.8 points at 400 samples, 4.4 at 2000.
struct Periodic {
  const char* clock;  // PERISCOPE_PROFILE_CLOCK
  int period_us, hz, seconds;
  bool unprivileged = false;  // the host runs as nobody: perf_event_paranoid decides its clock
};
class PeriodicWork : public testing::TestWithParam<Periodic> {};

TEST_P(PeriodicWork, DoesNotFoolTheSampler) {
  if (agent_preload().find("tsan") != std::string::npos) {
    // TSan defers a signal to its next safe point in the thread (and blocks it meanwhile), so
    // samples land where TSan delivers them: the shares measure TSan, not the sampler.
    GTEST_SKIP() << "sampling accuracy is measured without ThreadSanitizer";
  }
  const Periodic& p = GetParam();
  SocketDir dir;
  if (p.unprivileged) {
    if (::geteuid() != 0) GTEST_SKIP() << "running the host as another uid needs root";
    ASSERT_EQ(::chown(dir.path().c_str(), kNobody, kNobody), 0);  // the agent's socket directory is its own
  }
  ProfiledHost host(dir, {{"PROFILE_TARGET_PERIOD_US", std::to_string(p.period_us)}, {"PERISCOPE_PROFILE_CLOCK", p.clock}},
                    p.unprivileged ? kNobody : kSameUser);
  const std::string out = dir.path() + "/periodic.folded";
  // Two records at most: a 4-sigma miss happens by chance once in ~5,000 checks (CI met one,
  // 55.4 for 60 +- 4.5 over 1,862 samples), twice in a row never; a sampler fooled by the period
  // or biased misses in both.
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const double cpu_before = thread_cpu_seconds(host.process.pid(), "worker");
    auto r = periscope({"record", host.pid(), "-d", std::to_string(p.seconds), "--rate", std::to_string(p.hz), "-o", out});
    const double cpu = thread_cpu_seconds(host.process.pid(), "worker") - cpu_before;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (p.unprivileged && perf_event_paranoid() >= 2) {
      // What Debian allows a user: perf_event for user mode, not CPU timers stuck to the 4 ms tick.
      EXPECT_NE(r.err.find("perf_event task-clock per thread in user mode, per-thread CPU timers in system calls"),
                std::string::npos) << r.err;
    }
    const WorkShares shares = work_shares(slurp(out));
    const double n = shares.work;
    // The sampling clock is the thread's CPU time: p.hz of what it got (less than the wall time
    // on a loaded machine; the CPU time is read around the whole command, longer than the record).
    ASSERT_GT(n, 0.4 * p.hz * cpu) << cpu << " s of CPU (measured over more than the record); " << r.err;
    ASSERT_GT(n, 0.2 * p.hz * p.seconds) << cpu << " s of CPU; " << r.err;
    const double bound = 4 * 100 * std::sqrt(0.24 / n);
    const bool within = std::abs(shares.a - 60) <= bound && std::abs(shares.b - 30) <= bound && std::abs(shares.c - 10) <= bound;
    if (!within && attempt == 1) {
      std::cerr << "first record outside 4 sigma (" << bound << "): " << shares.a << "/" << shares.b << "/" << shares.c
                << " over " << n << " samples; recording again\n";
      continue;
    }
    EXPECT_NEAR(shares.a, 60, bound) << r.err;
    EXPECT_NEAR(shares.b, 30, bound) << r.err;
    EXPECT_NEAR(shares.c, 10, bound) << r.err;
    break;
  }
}

// The tid of the thread of `pid` named `name`, 0 if none.
pid_t thread_named(pid_t pid, const std::string& name) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task)) {
    if (slurp(entry.path().string() + "/comm") == name + "\n") return std::stoi(entry.path().filename().string());
  }
  return 0;
}

// A production machine is contended: the worker shares its core with a busy neighbour. With a
// fixed sampling period the shares drifted (65/22/13 at 97 Hz); perf_event with random periods
// reads 60/30/10 alone and contended. Bounds: 4 standard deviations, as PeriodicWork.
TEST(Record, SharesHoldWhenTheThreadSharesItsCoreWithABusyNeighbour) {
  if (agent_preload().find("tsan") != std::string::npos) GTEST_SKIP() << "sampling accuracy is measured without TSan";
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus < 1) GTEST_SKIP() << "unknown CPU count";
  SocketDir dir;
  ProfiledHost host(dir);
  pid_t worker = 0;  // the target names its thread as it starts, maybe after it said "ready"
  ASSERT_TRUE(wait_until([&] { return (worker = thread_named(host.process.pid(), "worker")) > 0; }, 10s));
  cpu_set_t core;
  CPU_ZERO(&core);
  CPU_SET(cpus - 1, &core);
  ASSERT_EQ(::sched_setaffinity(worker, sizeof core, &core), 0);
  std::atomic<bool> done{false};
  std::thread neighbour([&] {
    ::pthread_setaffinity_np(::pthread_self(), sizeof core, &core);
    volatile unsigned long spin = 0;
    while (!done.load(std::memory_order_relaxed)) spin = spin + 1;
  });
  const std::string out = dir.path() + "/contended.folded";
  auto r = periscope({"record", host.pid(), "-d", "4", "--rate", "997", "-o", out});
  done = true;
  neighbour.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const WorkShares shares = work_shares(slurp(out));
  ASSERT_GT(shares.work, 800) << "about half of 997 Hz x 4 s: " << r.err;
  const double bound = 4 * 100 * std::sqrt(0.24 / shares.work);
  EXPECT_NEAR(shares.a, 60, bound) << r.err;
  EXPECT_NEAR(shares.b, 30, bound) << r.err;
  EXPECT_NEAR(shares.c, 10, bound) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Record, PeriodicWork,
                         testing::Values(Periodic{"perf", 10000, 100, 4}, Periodic{"perf", 1000, 1000, 2},
                                         Periodic{"timer", 10000, 100, 4}, Periodic{"perf", 10101, 99, 4},
                                         Periodic{"perf", 1000, 1000, 2, true}, Periodic{"perf", 10000, 100, 4, true}),
                         [](const testing::TestParamInfo<Periodic>& run) {
                           return std::string(run.param.clock) + "_" + std::to_string(run.param.period_us) +
                                  "us_at_" + std::to_string(run.param.hz) + "hz" + (run.param.unprivileged ? "_as_nobody" : "");
                         });

TEST(Record, WallProfileSeesTheBlockedThreadToo) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/wall.folded";
  auto r = periscope({"record", host.pid(), "-d", "2", "--rate", "99", "--wall", "--threads", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t total = 0;
  auto by = samples_by_function(slurp(out), {"blocked_in_read", "work_a", "blocked (", "worker ("}, &total);
  EXPECT_GT(by["blocked_in_read"], 100u) << slurp(out);
  EXPECT_GT(by["work_a"], 50u);
  EXPECT_GT(by["blocked ("], 100u) << "--threads puts the thread at the root";
  EXPECT_NEAR(static_cast<double>(by["blocked ("]), static_cast<double>(by["worker ("]),
              0.25 * static_cast<double>(by["worker ("]))
      << "wall clock counts a blocked thread as often as a busy one";
}

TEST(Record, SpeedscopeFileIsValidJson) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/cpu.speedscope.json";
  ASSERT_EQ(periscope({"record", host.pid(), "-d", "1", "-o", out}).exit_code, 0);
  auto doc = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(doc["profiles"][0]["type"], "sampled");
  EXPECT_EQ(doc["profiles"][0]["samples"].size(), doc["profiles"][0]["weights"].size());
  bool named = false;
  for (const auto& f : doc["shared"]["frames"]) named |= f["name"].get<std::string>().find("work_a") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(Record, PprofOpensInGoToolPprof) {
  if (!file_exists("/usr/bin/go")) GTEST_SKIP() << "go tool pprof needs golang-go (scripts/setup-deps.sh installs it)";
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/cpu.pb.gz";
  ASSERT_EQ(periscope({"record", host.pid(), "-d", "2", "--rate", "199", "-o", out}).exit_code, 0);
  auto top = run({"/usr/bin/go", "tool", "pprof", "-top", out}, {{"HOME", dir.path()}}, "", static_cast<uid_t>(-1),
                 120s);
  ASSERT_EQ(top.exit_code, 0) << top.out << top.err;
  EXPECT_NE(top.out.find("Type: cpu"), std::string::npos) << top.out;
  // The hottest function is work_a, with about 60% of the samples.
  std::istringstream lines(top.out);
  std::string line;
  while (std::getline(lines, line) && line.find("flat%") == std::string::npos) {
  }
  ASSERT_TRUE(std::getline(lines, line)) << top.out;
  EXPECT_NE(line.find("work_a"), std::string::npos) << top.out;
  auto tags = run({"/usr/bin/go", "tool", "pprof", "-tags", out}, {{"HOME", dir.path()}}, "", static_cast<uid_t>(-1),
                  120s);
  EXPECT_NE(tags.out.find("worker ("), std::string::npos) << "threads are labels:\n" << tags.out;
}

TEST(Record, ViewReadsEveryFormatAndConverts) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string pb = dir.path() + "/cpu.pb.gz";
  ASSERT_EQ(periscope({"record", host.pid(), "-d", "2", "--rate", "199", "-o", pb}).exit_code, 0);
  auto tree = periscope({"view", pb, "--min-percent", "5"});
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  EXPECT_NE(tree.out.find("cpu profile: "), std::string::npos) << tree.out;
  EXPECT_NE(tree.out.find("work_a"), std::string::npos) << tree.out;
  auto bottom = periscope({"view", pb, "--bottom-up"});
  ASSERT_EQ(bottom.exit_code, 0);
  EXPECT_NE(bottom.out.find("\n  "), std::string::npos);
  const std::string folded = dir.path() + "/converted.folded";
  ASSERT_EQ(periscope({"view", pb, "-o", folded}).exit_code, 0);
  const std::string speedscope = dir.path() + "/converted.speedscope.json";
  ASSERT_EQ(periscope({"view", folded, "-o", speedscope}).exit_code, 0);
  auto again = periscope({"view", speedscope});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  const std::string html = dir.path() + "/converted.html";
  ASSERT_EQ(periscope({"view", speedscope, "-o", html}).exit_code, 0);
  auto from_html = periscope({"view", html, "--min-percent", "5"});
  EXPECT_EQ(from_html.exit_code, 0) << from_html.err;
  EXPECT_NE(from_html.out.find("work_a"), std::string::npos) << "view reads our own flame graphs";
  uint64_t total = 0;
  auto by = samples_by_function(slurp(folded), {"work_a"}, &total);
  EXPECT_GT(by["work_a"], 0u);
  std::ofstream(dir.path() + "/junk.folded") << "this is not a profile\n";
  auto junk = periscope({"view", dir.path() + "/junk.folded"});
  EXPECT_EQ(junk.exit_code, 1);
  EXPECT_NE(junk.err.find("line 1 is not 'frame;frame;... COUNT'"), std::string::npos) << junk.err;
}

TEST(Record, TopShowsTheHottestFunctionsAndStopsSampling) {
  SocketDir dir;
  ProfiledHost host(dir);
  auto r = periscope({"top", host.pid(), "--rate", "199", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pid " + host.pid() + "  cpu 199 Hz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lost 0"), std::string::npos) << r.out;
  // The last refresh: its first row is work_a, with about 60% own.
  auto last = r.out.substr(r.out.rfind("%Own*"));
  auto row = last.substr(last.find('\n') + 1);
  row = row.substr(0, row.find('\n'));
  EXPECT_NE(row.find("work_a"), std::string::npos) << last;
  EXPECT_NEAR(std::stod(row), 60, 12) << row;
  auto status = periscope({"exec", "--json", host.pid(), "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "top stops sampling when it ends";
}

TEST(Record, HtmlFlameGraphRendersInChromiumAndSearchFindsAFunction) {
  if (!file_exists("/usr/bin/chromium")) GTEST_SKIP() << "needs Debian's chromium (scripts/setup-deps.sh installs it)";
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string html = dir.path() + "/cpu.html";
  ASSERT_EQ(periscope({"record", host.pid(), "-d", "2", "--rate", "199", "-o", html}).exit_code, 0);
  // The page searches for work_a from the URL.
  auto dom = headless_dom("file://" + html + "#search=work_a", dir.path());
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  auto match = dom.out.find("id=\"match\">matched ");
  ASSERT_NE(match, std::string::npos) << dom.out.substr(0, 2000);
  double share = std::stod(dom.out.substr(match + 19));
  EXPECT_NEAR(share, 62, 10) << "work_a and what it calls: about 60% of the samples";
  EXPECT_NE(dom.out.find("class=\"f hit\""), std::string::npos) << "matching frames are highlighted";
  EXPECT_NE(dom.out.find("work_b"), std::string::npos) << "the other frames are drawn too";
  EXPECT_NE(dom.out.find("<option value=\"worker ("), std::string::npos) << "a per-thread view is offered";
}

TEST(Record, CtrlCStopsAndStillWritesTheFile) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/interrupted.folded";
  Process rec({cli_path(), "record", host.pid(), "-o", out}, {});
  // Interrupted once the agent has sampled enough, however long that takes on a loaded machine.
  ASSERT_TRUE(wait_until([&] {
    auto status = periscope({"exec", "--json", host.pid(), "profile", "status"});
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    return j.is_object() && j.value("running", false) && j.value("samples", 0) > 60;
  }, 30s)) << rec.stderr_text();
  rec.kill(SIGINT);
  ASSERT_EQ(rec.wait(), 0) << rec.stderr_text();
  EXPECT_NE(rec.stderr_text().find("(interrupted)"), std::string::npos) << rec.stderr_text();
  uint64_t total = 0;
  samples_by_function(slurp(out), {}, &total);
  EXPECT_GT(total, 50u);
  auto status = periscope({"exec", "--json", host.pid(), "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "the agent stopped sampling";
}

// A forked backend ends its query, a host crashes: the record keeps what it took up to its last
// second, says so, and exits 6 (not 0: the file is shorter than asked; not 5: it is written).
TEST(Record, ATargetThatDiesMidwayLeavesWhatWasSampled) {
  SocketDir dir;
  ProfiledHost host(dir);
  const std::string out = dir.path() + "/partial.folded";
  Process rec({cli_path(), "record", host.pid(), "-d", "60", "-o", out}, {});
  // Killed once the window holds enough samples for the shares below (about 1.5 s at 99 Hz) and
  // record has checkpointed them (every 200 ms), however long that takes on a loaded machine.
  ASSERT_TRUE(wait_until([&] {
    auto status = periscope({"exec", "--json", host.pid(), "profile", "status"});
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    return j.is_object() && j.value("running", false) && j.value("samples", 0) > 150;
  }, 30s)) << rec.stderr_text();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // two polls: one checkpoint is taken
  host.process.kill(SIGKILL);
  const auto code = rec.wait(20s);
  ASSERT_TRUE(code) << "record ends when its target does";
  EXPECT_EQ(*code, 6) << rec.stderr_text();
  EXPECT_NE(rec.stderr_text().find("exited during the recording; the file holds what was sampled up to its last checkpoint"), std::string::npos)
      << rec.stderr_text();
  const WorkShares shares = work_shares(slurp(out));
  EXPECT_GT(shares.work, 0) << "named after the target was gone: " << slurp(out);
  EXPECT_NEAR(shares.a, 60, 15) << slurp(out);
}

TEST(Record, ProfileCommandsWorkFromTheRepl) {
  SocketDir dir;
  ProfiledHost host(dir);
  // exec's session ends at once: a profile that outlives it needs a time limit.
  auto started = periscope({"exec", host.pid(), "profile", "start", "wall", "49", "--for", "60"});
  EXPECT_NE(started.out.find("profiling wall at 49 Hz"), std::string::npos) << started.out << started.err;
  EXPECT_NE(started.out.find("for 60 s"), std::string::npos) << started.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // One sampler: a wall profile joins the running one at its rate; a cpu one waits for it.
  auto joined = run({cli_path(), "attach", host.pid()}, {}, "profile start wall 99\nprofile start wall\n");
  ASSERT_EQ(joined.exit_code, 0) << joined.err;
  EXPECT_NE(joined.out.find("profiling wall at 49 Hz (wall clock, every thread), until this session ends; joined "
                            "the running wall profile at its 49 Hz (asked for 99)"),
            std::string::npos)
      << joined.out;
  EXPECT_NE(joined.out.find("error: profile start: this session's profile is running"), std::string::npos)
      << joined.out;
  auto r = run({cli_path(), "attach", host.pid()}, {},
               "profile start\nprofile status\nprofile stop\nprofile status\nprofile dump\nprofile bogus\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("error: profile start: a wall profile is running for 1 client(s); a cpu profile can start "
                       "when they end"),
            std::string::npos)
      << r.out;
  // This session has no profile of its own: it sees, and may stop, the timed one.
  EXPECT_NE(r.out.find("running: wall at 49 Hz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stopped after"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stopped: wall at 49 Hz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blocked_in_read"), std::string::npos) << "dump prints folded stacks:\n" << r.out;
  EXPECT_NE(r.out.find("error: profile: unknown action 'bogus'"), std::string::npos) << r.out;
}

bool profiling(const ProfiledHost& host) { return profile_running(host.pid()); }

TEST(Record, AProfileEndsWithTheClientThatStartedIt) {
  SocketDir dir;
  ProfiledHost host(dir);
  for (int sig : {SIGKILL, SIGHUP}) {  // killed; its terminal closed
    Process rec({cli_path(), "record", host.pid(), "-o", dir.path() + "/never.folded"}, {});
    ASSERT_TRUE(wait_until([&] { return profiling(host); })) << rec.stderr_text();
    rec.kill(sig);
    rec.wait();
    EXPECT_TRUE(wait_until([&] { return !profiling(host); }, 2s)) << "signal " << sig << ": the profile stopped with record";
  }
  auto next = periscope({"record", host.pid(), "-d", "0.5", "-o", dir.path() + "/next.folded"});
  EXPECT_EQ(next.exit_code, 0) << "no 'a profile is already running': " << next.err;
}

TEST(Record, AProfileOutsideASessionNeedsATimeLimitAndKeepsIt) {
  SocketDir dir;
  ProfiledHost host(dir);
  auto timed = periscope({"exec", host.pid(), "profile", "start", "--for", "1"});
  ASSERT_EQ(timed.exit_code, 0) << timed.err;
  EXPECT_TRUE(profiling(host)) << "outlives exec's session";
  EXPECT_TRUE(wait_until([&] { return !profiling(host); }, 5s)) << "and stops after its second";
  auto bad = periscope({"exec", host.pid(), "profile", "start", "--for", "99999"});
  EXPECT_NE(bad.err.find("--for takes SECONDS, 1..3600"), std::string::npos) << bad.err;
}

// Threads that live 10 ms each (a thread per task): the agent's rescan (every 100 ms) used to
// find most of them gone, and the profile held 27% of their CPU time. New threads now arm
// themselves as they start (agent/src/hooks/thread_hooks.cpp, not in sanitizer builds).
TEST(Record, ShortLivedThreadsAreSampledFromTheirFirstMillisecond) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the pthread_create interposer is not built with sanitizers";
#endif
  SocketDir dir;
  const std::string out = dir.path() + "/churn.folded";
  auto r = run({target_path("thread_churn"), "100", "10"}, {{"LD_PRELOAD", agent_preload()},
                                                          {"PERISCOPE_SOCKET_DIR", dir.path()},
                                                          {"PERISCOPE_PROFILE", "cpu:999"},
                                                          {"PERISCOPE_PROFILE_OUT", out}},
               "", static_cast<uid_t>(-1), 120s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.rfind("churn_cpu_ns ", 0), 0u) << r.out;
  const double cpu_s = std::stod(r.out.substr(13)) / 1e9;
  uint64_t total = 0;
  auto by = samples_by_function(slurp(out), {"churn_work"}, &total);
  // At 999 Hz each sample stands for 1/999 s of a thread's CPU time (random periods keep the mean).
  const double sampled_s = static_cast<double>(by["churn_work"]) / 999.0;
  std::cout << "short-lived threads: " << by["churn_work"] << " samples in churn_work = " << sampled_s << " s of "
            << cpu_s << " s of their CPU time (" << 100 * sampled_s / cpu_s << "%)" << std::endl;
  EXPECT_GE(sampled_s, 0.7 * cpu_s) << slurp(out).substr(0, 2000);
  EXPECT_LE(sampled_s, 1.15 * cpu_s) << "no thread is sampled twice";
}

TEST(Record, WholeRunProfileIsWrittenAtExit) {
  SocketDir dir;
  for (const std::string name : {"run.folded", "run.pb.gz"}) {
    const std::string out = dir.path() + "/" + name;
    auto r = run({target_path("short_burn")}, {{"LD_PRELOAD", agent_preload()},
                                               {"PERISCOPE_SOCKET_DIR", dir.path()},
                                               {"PERISCOPE_PROFILE", "cpu:499"},
                                               {"PERISCOPE_PROFILE_OUT", out}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "done\n");
    EXPECT_NE(r.err.find("wrote the profile to " + out), std::string::npos) << r.err;
    ASSERT_TRUE(file_exists(out));
    if (name == "run.folded") {
      uint64_t total = 0;
      auto by = samples_by_function(slurp(out), {"short_burn_work"}, &total);
      // 499 Hz x 0.6 s with perf_event; per-thread CPU timers (the fallback where perf_event is
      // not allowed) deliver only about 200 Hz.
      EXPECT_GT(by["short_burn_work"], 60u);
      EXPECT_GE(static_cast<double>(by["short_burn_work"]) / static_cast<double>(total), 0.9);
    } else if (file_exists("/usr/bin/go")) {
      auto top = run({"/usr/bin/go", "tool", "pprof", "-top", out}, {{"HOME", dir.path()}}, "", static_cast<uid_t>(-1),
                     120s);
      EXPECT_NE(top.out.find("short_burn_work"), std::string::npos) << top.out << top.err;
    }
  }
  auto bad = run({target_path("short_burn")},
                 {{"LD_PRELOAD", agent_preload()}, {"PERISCOPE_SOCKET_DIR", dir.path()}, {"PERISCOPE_PROFILE", "gpu"}});
  EXPECT_EQ(bad.exit_code, 0) << "a bad setting never breaks the host";
  EXPECT_NE(bad.err.find("PERISCOPE_PROFILE='gpu': expected cpu[:HZ] or wall[:HZ]"), std::string::npos) << bad.err;
}

TEST(Record, BadOutputNameAndMissingAgentAreExplained) {
  SocketDir dir;
  ProfiledHost host(dir);
  auto bad = periscope({"record", host.pid(), "-d", "1", "-o", dir.path() + "/x.txt"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("must end in .html, .folded, .speedscope.json or .pb.gz"), std::string::npos) << bad.err;
  Process plain({target_path("host_target")}, dir.env());
  ASSERT_TRUE(plain.read_line());
  auto none = periscope({"record", std::to_string(plain.pid()), "-d", "1", "-o", dir.path() + "/y.folded"});
  EXPECT_EQ(none.exit_code, 3);
  EXPECT_NE(none.err.find("has no periscope agent"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace periscope::test
