#include "agent/src/watchdog/fast_clock.h"

#include <atomic>
#include <ctime>
#include <x86intrin.h>

#include "profiler/proc_reader.h"

namespace periscope::agent {

namespace {

std::atomic<bool> g_use_tsc{false};
std::atomic<double> g_ns_per_tick{1.0};
uint64_t g_base_tsc = 0;
uint64_t g_base_ns = 0;

bool cpu_has_stable_tsc() {
  auto info = proc::read_file("/proc/cpuinfo", 1 << 20);
  if (!info) return false;
  auto flags = info->find("\nflags");
  if (flags == std::string::npos) return false;
  std::string line = info->substr(flags, info->find('\n', flags + 1) - flags);
  return line.find(" constant_tsc") != std::string::npos && line.find(" nonstop_tsc") != std::string::npos;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void init_fast_clock() {
  static bool done = false;
  if (done) return;
  done = true;
  if (!cpu_has_stable_tsc()) return;
  g_base_tsc = __rdtsc();
  g_base_ns = monotonic_ns();
  // A first rate over 2 ms; refine_fast_clock() improves it with every scan.
  uint64_t end_ns = g_base_ns + 2000000;
  while (monotonic_ns() < end_ns) {
  }
  double rate = static_cast<double>(monotonic_ns() - g_base_ns) / static_cast<double>(__rdtsc() - g_base_tsc);
  if (rate > 0.01 && rate < 100) {
    g_ns_per_tick.store(rate);
    g_use_tsc.store(true);
  }
}

void refine_fast_clock() {
  if (!g_use_tsc.load(std::memory_order_relaxed)) return;
  uint64_t ns = monotonic_ns();
  uint64_t tsc = __rdtsc();
  if (ns - g_base_ns < 100000000) return;  // wait for a 100 ms baseline
  double rate = static_cast<double>(ns - g_base_ns) / static_cast<double>(tsc - g_base_tsc);
  if (rate > 0.01 && rate < 100) g_ns_per_tick.store(rate, std::memory_order_relaxed);
}

uint64_t now_ticks() {
  if (g_use_tsc.load(std::memory_order_relaxed)) return __rdtsc();
  return monotonic_ns();
}

double ticks_to_ns(uint64_t ticks) {
  if (!g_use_tsc.load(std::memory_order_relaxed)) return static_cast<double>(ticks);
  return static_cast<double>(ticks) * g_ns_per_tick.load(std::memory_order_relaxed);
}

bool fast_clock_uses_tsc() { return g_use_tsc.load(); }

}  // namespace periscope::agent
