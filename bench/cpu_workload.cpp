// Fixed CPU work for the profiler benchmarks, with stacks about 40 frames deep.
//   cpu_workload calibrate       prints how many rounds of the fixed work take one CPU second here
//   cpu_workload fixed SECONDS [ROUNDS_PER_SECOND]
//                                one thread, SECONDS x ROUNDS_PER_SECOND rounds of fixed work
//                                (pass the figure `calibrate` printed, so that every run of a
//                                comparison does the same work and it lasts ~SECONDS on this machine)
// Each prints the main thread's CPU seconds for the work, its wall seconds, the process's CPU.
//   PIN_CPU=N: the main thread (the one that works) runs on CPU N only; threads started before
//                                main (a preloaded agent's) keep their own affinity.
//   FLOOR_HZ=N (with fixed): the floor a sampling profiler cannot go below, for comparison: a
//                                task-clock perf event on the thread at N Hz whose signal runs an
//                                empty handler; prints floor_samples too.
//   FLOOR_RESTART=1 (with FLOOR_HZ): the floor of a sampler whose periods are random: the event
//                                stops after each overflow and the handler sets a new period and
//                                starts it again (two ioctls, no unwinding), as periscope's does.
//   cpu_workload shares SECONDS  one thread: work_a 60%, work_b 30%, work_c 10% of its CPU time
//   cpu_workload twins SECONDS   two identical busy threads, twin_left and twin_right
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include "tests/targets/round_scale.h"

namespace {

volatile unsigned long g_sink = 0;

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

__attribute__((noinline, noipa)) void spin(unsigned long iterations) {
  for (unsigned long i = 0; i < iterations; ++i) g_sink = g_sink + i;
}

// Recurses `depth` frames, then spins: samples see ~40-frame stacks.
__attribute__((noinline, noipa)) void deep(int depth, unsigned long iterations) {
  if (depth == 0) return spin(iterations);
  deep(depth - 1, iterations);
  asm volatile("");
}

__attribute__((noinline, noipa)) void work_a(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) deep(36, 2000);
}
__attribute__((noinline, noipa)) void work_b(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) deep(36, 2000);
}
__attribute__((noinline, noipa)) void work_c(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) deep(36, 2000);
}
__attribute__((noinline, noipa)) void twin_left(double seconds) {
  for (uint64_t end = thread_cpu_ns() + static_cast<uint64_t>(seconds * 1e9); thread_cpu_ns() < end;) deep(36, 2000);
}
__attribute__((noinline, noipa)) void twin_right(double seconds) {
  for (uint64_t end = thread_cpu_ns() + static_cast<uint64_t>(seconds * 1e9); thread_cpu_ns() < end;) deep(36, 2000);
}

std::atomic<unsigned long> g_floor_samples{0};
int g_floor_fd = -1;
bool g_floor_restart = false;
uint64_t g_floor_mean_ns = 0;
uint64_t g_floor_random = 0x9e3779b97f4a7c15ull;

// async-signal-safe: an atomic add, arithmetic and two ioctls.
void on_floor_signal(int, siginfo_t*, void*) {
  g_floor_samples.fetch_add(1, std::memory_order_relaxed);
  if (!g_floor_restart) return;
  g_floor_random ^= g_floor_random << 13;
  g_floor_random ^= g_floor_random >> 7;
  g_floor_random ^= g_floor_random << 17;
  uint64_t next = g_floor_mean_ns / 2 + g_floor_random % (g_floor_mean_ns + 1);
  ioctl(g_floor_fd, PERF_EVENT_IOC_PERIOD, &next);
  ioctl(g_floor_fd, PERF_EVENT_IOC_REFRESH, 1);
}

// The kernel's part of a sample and nothing else: a perf event whose overflow signal runs a handler
// that only counts. False if perf_event is not allowed here.
bool start_floor_sampling(int hz) {
  const int sig = SIGRTMIN + 4;
  struct sigaction action {};
  action.sa_sigaction = on_floor_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(sig, &action, nullptr) != 0) return false;
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_TASK_CLOCK;
  g_floor_mean_ns = 1000000000ull / static_cast<uint64_t>(hz);
  g_floor_restart = std::getenv("FLOOR_RESTART") != nullptr;
  attr.sample_period = g_floor_mean_ns;
  attr.disabled = 1;
  attr.wakeup_events = 1;
  const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return false;
  g_floor_fd = fd;
  f_owner_ex owner{F_OWNER_TID, static_cast<pid_t>(syscall(SYS_gettid))};
  return fcntl(fd, F_SETOWN_EX, &owner) == 0 && fcntl(fd, F_SETSIG, sig) == 0 &&
         fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) == 0 &&
         (g_floor_restart ? ioctl(fd, PERF_EVENT_IOC_REFRESH, 1) : ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* cpu = std::getenv("PIN_CPU")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::atoi(cpu), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  std::string mode = argc > 1 ? argv[1] : "fixed";
  double seconds = argc > 2 ? std::atof(argv[2]) : 2;
  const uint64_t work_started = thread_cpu_ns();
  const auto wall_started = std::chrono::steady_clock::now();
  if (mode == "calibrate") {
    // The fastest of five 0.2 s measurements: the least disturbed by other work on the machine.
    double best = 0;
    for (int m = 0; m < 5; ++m) {
      const uint64_t start = thread_cpu_ns();
      unsigned long rounds = 0;
      while (thread_cpu_ns() - start < 200000000ull) {
        deep(38, 1000000);
        ++rounds;
      }
      const double per_second = static_cast<double>(rounds) * 1e9 / static_cast<double>(thread_cpu_ns() - start);
      if (per_second > best) best = per_second;
    }
    std::printf("%.0f\n", best);
    return 0;
  }
  if (mode == "fixed") {
    // A fixed count of rounds keeps the work identical across the runs of a comparison.
    const double per_second = argc > 3 ? std::atof(argv[3]) : 500;
    const unsigned long rounds = static_cast<unsigned long>(seconds * per_second);
    if (const char* floor_hz = std::getenv("FLOOR_HZ"); floor_hz && !start_floor_sampling(std::atoi(floor_hz))) {
      std::fprintf(stderr, "cpu_workload: perf_event is not allowed here\n");
      return 1;
    }
    for (unsigned long r = 0; r < rounds; ++r) deep(38, 1000000);
  } else if (mode == "shares") {
    periscope_targets::RoundScale scale;  // rounds of 5-15 ms, 10 on average: see round_scale.h
    for (double done = 0; done < seconds; done += 0.01) {
      const uint64_t scale_percent = scale.next_percent();
      work_a(6000000 * scale_percent / 100);
      work_b(3000000 * scale_percent / 100);
      work_c(1000000 * scale_percent / 100);
    }
  } else if (mode == "twins") {
    std::thread a([&] { twin_left(seconds); });
    std::thread b([&] { twin_right(seconds); });
    a.join();
    b.join();
  } else {
    std::fprintf(stderr, "usage: cpu_workload calibrate | fixed SECONDS [ROUNDS_PER_SECOND] | shares|twins SECONDS\n");
    return 2;
  }
  // The main thread's CPU time for the work: what sampling costs the host shows here (handlers
  // run on the sampled thread), not the agent's own thread on the other core.
  std::printf("work_cpu_seconds %.4f\nwork_wall_seconds %.4f\ncpu_seconds %.4f\n",
              static_cast<double>(thread_cpu_ns() - work_started) / 1e9,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_started).count(),
              process_cpu_seconds());
  if (std::getenv("FLOOR_HZ")) std::printf("floor_samples %lu\n", g_floor_samples.load());
  return 0;
}
