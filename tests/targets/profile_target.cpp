// A host with a known CPU workload for the profiler tests, the agent preloaded. Thread "worker"
// repeats: work_a for 6 ms of its CPU time, work_b for 3 ms, work_c for 1 ms: 60/30/10%
// (each round scaled by a random 50-150%, so that sampling cannot lock onto its period; with
// PROFILE_TARGET_PERIOD_US=P every round is exactly P us of CPU time instead: periodic work, the
// kind a sampler with a fixed period is fooled by).
// Thread "blocked" sits in blocked_in_read() forever (for wall-clock profiles). Prints
// "ready <pid>" and lives until stdin closes.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>

#include "tests/targets/round_scale.h"

namespace {

thread_local volatile unsigned long g_sink = 0;  // per thread: the spinning threads share no data
int g_pipe[2];

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// noipa: three distinct functions, never folded into one. The clock is read every 20,000 adds
// (some microseconds): reading it is a system call, and with a short inner loop a good part of
// each function's samples landed in clock_gettime instead of its own code.
__attribute__((noinline, noipa)) void work_a(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) {
    for (int i = 0; i < 20000; ++i) g_sink = g_sink + 1;
  }
}
__attribute__((noinline, noipa)) void work_b(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) {
    for (int i = 0; i < 20000; ++i) g_sink = g_sink + 2;
  }
}
__attribute__((noinline, noipa)) void work_c(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) {
    for (int i = 0; i < 20000; ++i) g_sink = g_sink + 3;
  }
}

__attribute__((noinline, noipa)) void blocked_in_read() {
  char c;
  while (::read(g_pipe[0], &c, 1) != 0) {
  }
}

}  // namespace

int main() {
  if (::pipe(g_pipe) != 0) return 1;
  std::thread worker([] {
    pthread_setname_np(pthread_self(), "worker");
    if (const char* p = std::getenv("PROFILE_TARGET_PERIOD_US")) {
      const uint64_t period_ns = std::strtoull(p, nullptr, 10) * 1000;
      for (;;) {
        work_a(period_ns * 6 / 10);
        work_b(period_ns * 3 / 10);
        work_c(period_ns / 10);
      }
    }
    periscope_targets::RoundScale scale;  // rounds of 5-15 ms: see round_scale.h
    for (;;) {
      const uint64_t scale_percent = scale.next_percent();
      work_a(6000000 * scale_percent / 100);
      work_b(3000000 * scale_percent / 100);
      work_c(1000000 * scale_percent / 100);
    }
  });
  std::thread blocked([] {
    pthread_setname_np(pthread_self(), "blocked");
    blocked_in_read();
  });
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  _exit(0);
}
