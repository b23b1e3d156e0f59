// A short-lived, unmodified program for whole-run profiling: burns about 0.6 s of CPU in
// short_burn_work() and exits normally.
#include <chrono>
#include <cstdio>

namespace {
thread_local volatile unsigned long g_sink = 0;  // per thread: the spinning threads share no data
}

__attribute__((noinline, noipa)) void short_burn_work() {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 10000; ++i) g_sink = g_sink + 1;
  }
}

int main() {
  short_burn_work();
  std::printf("done\n");
  return 0;
}
