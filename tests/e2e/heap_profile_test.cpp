// Heap profiles of a program whose heap is known (tests/targets/heap_target.cpp): what each named
// function keeps is estimated within 10%, churn shows ~0 in use but its whole volume allocated,
// go tool pprof reads the file and the HTTP endpoints, a leak started at run time is what --diff
// puts first, and freed memory leaves the in-use picture.
//
// Statistics: at PERISCOPE_HEAP_RATE=16384 each 32 MiB function holds ~2,000 sampled
// allocations, so its estimate's standard deviation is ~2.2%; 10% is 4.5 of them. The 1 MiB
// blocks are sampled with certainty (p = 1 - e^-64).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

#define SKIP_UNLESS_HEAP_PROFILING()                                                                   \
  do {                                                                                                 \
    if (agent_preload() != agent_path()) GTEST_SKIP() << "sanitizer builds replace malloc themselves"; \
  } while (0)

class HeapHost {
 public:
  HeapHost(const SocketDir& dir, Env env) : process_({target_path("heap_target")}, with(dir, std::move(env))) {
    for (int i = 0; i < 6; ++i) {
      auto line = process_.read_line(60s);
      if (!line) break;
      if (*line == "ready") {
        ready_ = true;
        break;
      }
      std::istringstream words(*line);
      std::string kind, function;
      size_t bytes = 0;
      words >> kind >> function >> bytes;
      truth_[function] = static_cast<double>(bytes);
    }
    EXPECT_TRUE(ready_) << process_.stderr_text();
    EXPECT_TRUE(wait_until([&] { return file_exists(dir.socket_for(process_.pid())); })) << process_.stderr_text();
  }
  std::string pid() const { return std::to_string(process_.pid()); }
  double truth(const std::string& function) const { return truth_.at(function); }
  void say(const std::string& line) {
    process_.write_stdin(line + "\n");
    EXPECT_EQ(process_.read_line(10s).value_or(""), "ok " + line);
  }
  Process& process() { return process_; }

 private:
  static Env with(const SocketDir& dir, Env env) {
    env["LD_PRELOAD"] = agent_preload();
    env["PERISCOPE_SOCKET_DIR"] = dir.path();
    return env;
  }
  Process process_;
  std::map<std::string, double> truth_;
  bool ready_ = false;
};

const Env kHeapOn{{"PERISCOPE_HEAP", "on"}, {"PERISCOPE_HEAP_RATE", "16384"}};

// The profile as `periscope heap --json` gives it: per function, the sum over the stacks it is in.
struct Totals {
  double inuse = 0;
  double alloc = 0;
};
std::map<std::string, Totals> totals_by_function(const std::string& json_text) {
  std::map<std::string, Totals> out;
  const auto profile = nlohmann::json::parse(json_text);
  for (const auto& s : profile.at("stacks")) {
    std::map<std::string, bool> seen;
    for (const auto& f : s.at("frames")) {
      std::string name = f.get<std::string>();
      if (auto colon = name.rfind("::"); colon != std::string::npos) name = name.substr(colon + 2);
      if (!seen.emplace(name, true).second) continue;
      out[name].inuse += s.at("inuse_bytes").get<double>();
      out[name].alloc += s.at("alloc_bytes").get<double>();
    }
  }
  return out;
}

TEST(HeapProfile, WhatEachFunctionKeepsIsEstimatedWithinTenPercent) {
  SKIP_UNLESS_HEAP_PROFILING();
  SocketDir dir;
  HeapHost host(dir, kHeapOn);
  auto r = periscope({"heap", host.pid(), "--json"}, dir.env());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto totals = totals_by_function(r.out);
  for (const char* f : {"retain_small_blocks", "retain_vectors", "retain_large_blocks"}) {
    EXPECT_NEAR(totals[f].inuse / host.truth(f), 1.0, 0.10) << f << ": " << totals[f].inuse << " of " << host.truth(f);
  }
  // Churn: a gibibyte allocated and freed, nothing kept.
  EXPECT_NEAR(totals["churn"].alloc / host.truth("churn"), 1.0, 0.10) << totals["churn"].alloc;
  EXPECT_LT(totals["churn"].inuse, 0.001 * host.truth("churn")) << totals["churn"].inuse;

  // The table a user reads: the three keepers, churn nowhere among what is in use.
  auto table = periscope({"heap", host.pid(), "-n", "40"}, dir.env());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("inuse_space: "), std::string::npos) << table.out;
  for (const char* f : {"retain_small_blocks", "retain_vectors", "retain_large_blocks"}) {
    EXPECT_NE(table.out.find(f), std::string::npos) << table.out;
  }
  EXPECT_EQ(table.out.find("churn"), std::string::npos) << table.out;

  // Freed: the in-use picture empties, what was allocated stays.
  host.say("free");
  totals = totals_by_function(periscope({"heap", host.pid(), "--json"}, dir.env()).out);
  for (const char* f : {"retain_small_blocks", "retain_large_blocks"}) {
    EXPECT_LT(totals[f].inuse, 0.01 * host.truth(f)) << f;
    EXPECT_GT(totals[f].alloc, 0.9 * host.truth(f)) << f;
  }
}

// `go tool pprof -top` on a file or an endpoint: the line of `function`, its flat value in bytes.
double pprof_flat(const std::string& top, const std::string& function) {
  std::istringstream lines(top);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(function) == std::string::npos) continue;
    return std::strtod(line.c_str(), nullptr);
  }
  return -1;
}

RunResult go_pprof(const SocketDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/go", "tool", "pprof", "-top", "-unit=bytes"});
  return run(args, {{"HOME", dir.path()}}, "", static_cast<uid_t>(-1), 120s);
}

TEST(HeapProfile, GoToolPprofReadsTheFileAndTheHttpEndpoints) {
  SKIP_UNLESS_HEAP_PROFILING();
  if (!file_exists("/usr/bin/go")) GTEST_SKIP() << "go tool pprof needs golang-go (scripts/setup-deps.sh installs it)";
  SocketDir dir;
  Env env = kHeapOn;
  env["PERISCOPE_HTTP"] = "127.0.0.1:0";
  HeapHost host(dir, env);
  const std::string pb = dir.path() + "/heap.pb.gz";
  auto wrote = periscope({"heap", host.pid(), "-o", pb}, dir.env());
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  auto file = go_pprof(dir, {"-sample_index=inuse_space", pb});
  ASSERT_EQ(file.exit_code, 0) << file.out << file.err;
  EXPECT_NE(file.out.find("Type: inuse_space"), std::string::npos) << file.out;
  EXPECT_NEAR(pprof_flat(file.out, "retain_large_blocks") / host.truth("retain_large_blocks"), 1.0, 0.10) << file.out;
  auto allocs = go_pprof(dir, {"-sample_index=alloc_space", pb});
  EXPECT_NEAR(pprof_flat(allocs.out, "churn") / host.truth("churn"), 1.0, 0.10) << allocs.out;

  auto info = periscope({"exec", host.pid(), "info"}, dir.env());
  const size_t at = info.out.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << info.out;
  const std::string base = info.out.substr(at, info.out.find('/', at + 7) - at);
  auto heap = go_pprof(dir, {base + "/debug/pprof/heap"});
  ASSERT_EQ(heap.exit_code, 0) << heap.out << heap.err;
  EXPECT_NE(heap.out.find("Type: inuse_space"), std::string::npos) << heap.out;
  EXPECT_NEAR(pprof_flat(heap.out, "retain_large_blocks") / host.truth("retain_large_blocks"), 1.0, 0.10) << heap.out;
  auto allocs_http = go_pprof(dir, {base + "/debug/pprof/allocs"});
  EXPECT_NE(allocs_http.out.find("Type: alloc_space"), std::string::npos) << allocs_http.out;
  // A delta over a second while nothing is allocated: nothing in it grew.
  host.say("leak");
  auto delta = go_pprof(dir, {"-sample_index=inuse_space", base + "/debug/pprof/heap?seconds=2"});
  ASSERT_EQ(delta.exit_code, 0) << delta.out << delta.err;
  EXPECT_GT(pprof_flat(delta.out, "leak_slowly"), 0) << delta.out;
  EXPECT_LE(pprof_flat(delta.out, "retain_large_blocks"), 0) << delta.out;
}

TEST(HeapProfile, StartedAtRunTimeDiffPutsTheLeakFirst) {
  SKIP_UNLESS_HEAP_PROFILING();
  SocketDir dir;
  HeapHost host(dir, {});
  auto off = periscope({"heap", host.pid()}, dir.env());
  EXPECT_EQ(off.exit_code, 1);
  EXPECT_NE(off.err.find("heap profiling is off"), std::string::npos) << off.err;
  auto start = periscope({"heap", host.pid(), "--start", "--rate", "65536"}, dir.env());
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_NE(start.out.find("heap profiling on: every 64.0 KiB"), std::string::npos) << start.out;
  host.say("leak");
  auto diff = periscope({"heap", host.pid(), "--diff", "2", "-n", "3"}, dir.env());
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_NE(line_of(diff.out, 0).find("change in inuse_space"), std::string::npos) << diff.out;
  EXPECT_NE(line_of(diff.out, 2).find("leak_slowly"), std::string::npos) << "the first row:\n" << diff.out;
  // What was kept before the start is not in the picture: only what was allocated since.
  EXPECT_EQ(diff.out.find("retain_"), std::string::npos) << diff.out;
  // Flame graph of the growth, and --stop.
  const std::string html = dir.path() + "/heap.html";
  EXPECT_EQ(periscope({"heap", host.pid(), "-o", html}, dir.env()).exit_code, 0);
  // A browser shows it in bytes, and the leak's share when searched for.
  auto dom = headless_dom("file://" + html + "#search=leak_slowly", dir.path());
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("heap profile: inuse_space"), std::string::npos) << dom.out.substr(0, 3000);
  const size_t match = dom.out.find("id=\"match\">matched ");
  ASSERT_NE(match, std::string::npos) << dom.out.substr(0, 3000);
  EXPECT_GT(std::stod(dom.out.substr(match + 19)), 50) << "the leak holds most of what was allocated since the start";
  EXPECT_NE(dom.out.find(" MiB"), std::string::npos) << dom.out.substr(0, 3000);
  auto stop = periscope({"heap", host.pid(), "--stop"}, dir.env());
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_NE(stop.out.find("stopped"), std::string::npos) << stop.out;
  auto metrics = periscope({"metrics", host.pid(), "periscope_heap"}, dir.env());
  EXPECT_NE(metrics.out.find("periscope_heap_inuse_bytes"), std::string::npos) << metrics.out;
}

// Children forked while other threads sample (and may hold the profiler's lock) allocate, sample
// and exit; they get an agent of their own, which reads their inherited picture.
TEST(HeapProfile, ForkChildrenOfASamplingProcessDoNotHang) {
  SKIP_UNLESS_HEAP_PROFILING();
  SocketDir dir;
  HeapHost host(dir, {{"PERISCOPE_HEAP", "on"}, {"PERISCOPE_HEAP_RATE", "4096"}});
  host.process().write_stdin("forks\n");
  EXPECT_EQ(host.process().read_line(120s).value_or("(no answer)"), "forks ok") << host.process().stderr_text();
  EXPECT_EQ(periscope({"heap", host.pid()}, dir.env()).exit_code, 0);
}

TEST(HeapProfile, BadArgumentsGetOneLineAndTheHostLivesOn) {
  SKIP_UNLESS_HEAP_PROFILING();
  SocketDir dir;
  HeapHost host(dir, kHeapOn);
  auto value = periscope({"heap", host.pid(), "--value", "bogus"}, dir.env());
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_NE(value.err.find("--value must be"), std::string::npos) << value.err;
  auto format = periscope({"heap", host.pid(), "-o", dir.path() + "/heap.txt"}, dir.env());
  EXPECT_EQ(format.exit_code, 2) << format.err;
  auto rate = periscope({"exec", host.pid(), "heap", "start", "-5"}, dir.env());
  EXPECT_NE(rate.exit_code, 0);
  EXPECT_NE(rate.err.find("BYTES must be"), std::string::npos) << rate.err;
  auto other_rate = periscope({"heap", host.pid(), "--start", "--rate", "4096"}, dir.env());
  EXPECT_EQ(other_rate.exit_code, 1);
  EXPECT_NE(other_rate.err.find("stop it first"), std::string::npos) << other_rate.err;
  EXPECT_EQ(periscope({"heap", host.pid()}, dir.env()).exit_code, 0);
  host.say("free");
}

}  // namespace
}  // namespace periscope::test
