// Cost of a periscope::Request scope (begin + end) on the host's thread, against an empty loop in
// the same run, with the agent running and without it. Target: <= 40 ns median, no lock, no
// allocation. Run:
//   build/bench/request_scope --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <cstdlib>
#include <stdexcept>
#include <unistd.h>

#include "periscope/periscope.h"

namespace {

void ensure_agent(bool on) {
  static std::string dir = [] {
    char tmpl[] = "/tmp/periscope-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    return std::string(tmpl);
  }();
  if (!on) return periscope::stop();
  periscope::Options options;
  options.socket_dir = dir;
  options.slow_threshold = std::chrono::hours(1);  // measure the scope, not reports
  if (auto s = periscope::start(options); !s.ok()) throw std::runtime_error(s.message());
}

void BM_EmptyLoop(benchmark::State& state) {
  for (auto _ : state) benchmark::ClobberMemory();
}
BENCHMARK(BM_EmptyLoop);

void BM_RequestScope_AgentOff(benchmark::State& state) {
  ensure_agent(false);
  for (auto _ : state) {
    periscope::Request request("GET /checkout");
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_RequestScope_AgentOff);

void BM_RequestScope(benchmark::State& state) {
  if (state.thread_index() == 0) ensure_agent(true);
  for (auto _ : state) {
    periscope::Request request("GET /checkout");
    benchmark::ClobberMemory();
  }
  if (!periscope::Request("probe").tracked()) state.SkipWithError("the agent is not tracking requests");
}
BENCHMARK(BM_RequestScope);
BENCHMARK(BM_RequestScope)->Threads(2)->UseRealTime();

void BM_RequestScope_CApi(benchmark::State& state) {
  ensure_agent(true);
  for (auto _ : state) {
    periscope_request_end(periscope_request_begin("GET /checkout"));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_RequestScope_CApi);

}  // namespace

BENCHMARK_MAIN();
