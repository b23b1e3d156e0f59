// For bench/inject_bench.sh: WORKERS threads each run short slices of work and remember the
// longest gap between two slices (the time they were stopped, by a debugger or an injector);
// the main thread waits in read(2) for commands: "reset" clears the gaps, "gaps" prints the
// longest gap of any worker in microseconds, "quit" ends.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_quit{false};
std::atomic<long> g_epoch{0};

struct alignas(64) Worker {
  std::atomic<long> max_gap_us{0};
};

void beat(Worker& w) {
  volatile double sink = 0;
  long seen_epoch = g_epoch.load();
  auto last = Clock::now();
  while (!g_quit.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 2000; ++i) sink = sink + i * 0.5;
    const auto now = Clock::now();
    const long gap = std::chrono::duration_cast<std::chrono::microseconds>(now - last).count();
    last = now;
    if (long e = g_epoch.load(std::memory_order_relaxed); e != seen_epoch) {
      seen_epoch = e;
      w.max_gap_us.store(0);
      continue;
    }
    if (gap > w.max_gap_us.load(std::memory_order_relaxed)) w.max_gap_us.store(gap);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 4;
  std::vector<Worker> state(static_cast<size_t>(workers));
  std::vector<std::thread> threads;
  for (auto& w : state) threads.emplace_back(beat, std::ref(w));
  std::printf("ready\n");
  std::fflush(stdout);
  char line[64];
  while (std::fgets(line, sizeof line, stdin)) {
    std::string command(line);
    if (command.rfind("reset", 0) == 0) {
      g_epoch.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // every worker has seen it
      std::printf("ok\n");
    } else if (command.rfind("gaps", 0) == 0) {
      long most = 0;
      for (auto& w : state) most = std::max(most, w.max_gap_us.load());
      std::printf("%ld\n", most);
    } else if (command.rfind("quit", 0) == 0) {
      break;
    }
    std::fflush(stdout);
  }
  g_quit = true;
  for (auto& t : threads) t.join();
}
