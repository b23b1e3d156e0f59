// pthread_create + pthread_join of a thread that returns at once, N times: prints the mean in
// microseconds (bench/thread_create_cost.sh runs it with and without the agent).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>

namespace {
void* returns_at_once(void* arg) { return arg; }
}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    pthread_t thread;
    if (pthread_create(&thread, nullptr, returns_at_once, nullptr) != 0) return 1;
    pthread_join(thread, nullptr);
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.2f\n", us / n);
  return 0;
}
