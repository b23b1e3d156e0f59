// A program that crashes on purpose, for the crash report tests: `crash_target MODE [handler]`,
// MODE one of segv, bus, ill, fpe, abort, overflow (unbounded recursion on the main thread),
// overflow_thread (the same on a thread started after the agent). Built twice: linked with the agent (WITH_AGENT: it calls
// periscope::start() and crashes inside a request "GET /crash") and plain, for LD_PRELOAD.
// `handler` installs a handler of the host's own for MODE's signal before the agent starts; it
// prints "host handler ran" and exits 42. Two more threads are there when it crashes: "bystander",
// waiting in crash_target_bystander(), and "deaf", which blocks every signal.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <atomic>
#include <pthread.h>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

#ifdef WITH_AGENT
#include "periscope/periscope.h"
#endif

namespace {

volatile int g_zero = 0;
std::atomic<int> g_waiting{0};

__attribute__((noinline)) void crash_target_bystander() {
  pthread_setname_np(pthread_self(), "bystander");
  ++g_waiting;
  for (;;) ::pause();  // a signal's handler runs, then it waits again
}

void deaf() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  pthread_setname_np(pthread_self(), "deaf");
  ++g_waiting;
  for (;;) ::pause();
}

void host_handler(int) {
  const char text[] = "host handler ran\n";
  (void)!::write(STDERR_FILENO, text, sizeof text - 1);
  ::_exit(42);
}

__attribute__((noinline)) int crash_target_recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return crash_target_recurse(depth + 1) + frame[0];  // not a tail call: every frame stays
}

int signal_of(const std::string& mode) {
  if (mode == "segv" || mode.rfind("overflow", 0) == 0) return SIGSEGV;
  if (mode == "bus") return SIGBUS;
  if (mode == "ill") return SIGILL;
  if (mode == "fpe") return SIGFPE;
  return SIGABRT;
}

__attribute__((noinline)) void crash_target_fault(const std::string& mode) {
  if (mode == "segv") {
    *static_cast<volatile int*>(nullptr) = 1;
  } else if (mode == "bus") {
    // A mapping of a file past its end: SIGBUS on touch.
    FILE* f = std::tmpfile();
    void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    std::printf("%d\n", *static_cast<volatile char*>(p));
  } else if (mode == "ill") {
    __builtin_trap();
  } else if (mode == "overflow") {
    std::printf("%d\n", crash_target_recurse(0));
  } else if (mode == "overflow_thread") {
    std::thread([] { std::printf("%d\n", crash_target_recurse(0)); }).join();
  } else if (mode == "fpe") {
    volatile int numerator = 7;  // not 1: gcc turns 1 / x into a comparison, no division
    std::printf("%d\n", numerator / g_zero);
  } else {
    std::abort();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "segv";
  if (argc > 2 && std::strcmp(argv[2], "handler") == 0) std::signal(signal_of(mode), host_handler);
#ifdef WITH_AGENT
  (void)periscope::start();  // PERISCOPE_DISABLE=1: the run without the agent
  periscope::Request request("GET /crash");
#endif
  std::thread(crash_target_bystander).detach();
  std::thread(deaf).detach();
  while (g_waiting.load() < 2) std::this_thread::yield();
  crash_target_fault(mode);
  return 0;
}
