// Short-lived threads, one after another, as a server that starts a thread per task does: each
// burns MS milliseconds of its own CPU time in churn_work() and ends. Run with the agent preloaded
// and PERISCOPE_PROFILE set; at the end prints "churn_cpu_ns N", the CPU time the threads used.
// Usage: thread_churn [COUNT=100] [MS=10]
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pthread.h>

namespace {

thread_local volatile unsigned long g_sink = 0;  // per thread: the spinning threads share no data
std::atomic<uint64_t> g_churn_cpu_ns{0};
uint64_t g_ms = 10;

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

__attribute__((noinline, noipa)) void churn_work(uint64_t ns) {
  for (uint64_t end = thread_cpu_ns() + ns; thread_cpu_ns() < end;) {
    for (int i = 0; i < 20000; ++i) g_sink = g_sink + 1;
  }
}

void* churn_thread(void*) {
  churn_work(g_ms * 1000000);
  g_churn_cpu_ns.fetch_add(thread_cpu_ns());  // all of this thread's CPU time, its start included
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100;
  if (argc > 2) g_ms = std::strtoull(argv[2], nullptr, 10);
  for (long i = 0; i < count; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, churn_thread, nullptr) != 0) return 1;
    pthread_join(t, nullptr);
  }
  std::printf("churn_cpu_ns %llu\n", static_cast<unsigned long long>(g_churn_cpu_ns.load()));
  return 0;
}
