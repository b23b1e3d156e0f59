// A host with known call chains for the stack tests. Built with -O2 -g; the functions are
// noinline (or always_inline) so the chains are what the source says. Lines marked "marker:"
// are looked up by the tests, so they can move. Threads:
//   spinner   spin_outer -> spin_middle -> spin_inner, spinning       (marker: spin)
//   reader    blocked_in_read, blocked in read(2) on a pipe             (marker: read)
//   inliner   calls_inlined -> [inlined] inlined_outer -> [inlined] inlined_helper, spinning
//                                                                    (markers: inlined, ...call)
//   blocker   blocks every signal, sleeps in sleep_with_signals_blocked
//   deep      recurse() 400 levels deep, then sleeps                   (marker: deep)
//   no-cfi    spins in code without unwind info, with a garbage frame pointer
// It prints "ready <pid>" once every thread is in place and lives until stdin closes.
// "spawn-and-exit" on stdin starts a thread that exits at once, again and again (churn).
// "load PATH" dlopens PATH and runs its plugin_spin() on a new thread named "plugin"; prints "loaded".
#include <atomic>
#include <csignal>
#include <dlfcn.h>
#include <cstdio>
#include <iostream>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

extern "C" void spin_without_unwind_info();

namespace {

std::atomic<int> g_ready{0};
std::atomic<bool> g_churn{false};
thread_local volatile unsigned long g_sink = 0;  // per thread: the spinning threads share no data
int g_pipe[2];

void name_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

__attribute__((noinline)) void spin_inner() {
  ++g_ready;
  for (;;) g_sink = g_sink + 1;  // marker: spin
}
__attribute__((noinline)) void spin_middle() {
  spin_inner();
  asm volatile("");
}
__attribute__((noinline)) void spin_outer() {
  spin_middle();
  asm volatile("");
}

__attribute__((noinline)) void blocked_in_read() {
  ++g_ready;
  char c;
  while (::read(g_pipe[0], &c, 1) != 0) {  // marker: read
  }
}

__attribute__((always_inline)) inline void inlined_helper() {
  for (;;) g_sink = g_sink * 3 + 1;  // marker: inlined
}
__attribute__((always_inline)) inline void inlined_outer() {
  inlined_helper();  // marker: inlined call
}
__attribute__((noinline)) void calls_inlined() {
  ++g_ready;
  inlined_outer();  // marker: outer call
  asm volatile("");
}

__attribute__((noinline)) void sleep_with_signals_blocked() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  ++g_ready;
  for (;;) ::usleep(10000);
}

__attribute__((noinline)) int recurse(int depth) {
  if (depth == 0) {
    ++g_ready;
    for (;;) ::usleep(10000);  // marker: deep
  }
  int r = recurse(depth - 1);
  asm volatile("" : "+r"(r));
  return r + 1;
}

void churn() {
  while (g_churn) {
    std::thread([] { name_thread("short-lived"); }).join();
  }
}

}  // namespace

int main() {
  if (::pipe(g_pipe) != 0) return 1;
  std::vector<std::thread> threads;
  threads.emplace_back([] { name_thread("spinner"); spin_outer(); });
  threads.emplace_back([] { name_thread("reader"); blocked_in_read(); });
  threads.emplace_back([] { name_thread("inliner"); calls_inlined(); });
  threads.emplace_back([] { name_thread("blocker"); sleep_with_signals_blocked(); });
  threads.emplace_back([] { name_thread("deep"); recurse(400); });
  threads.emplace_back([] {
    name_thread("no-cfi");
    ++g_ready;
    spin_without_unwind_info();
  });
  while (g_ready.load() < 6) ::usleep(1000);
  std::printf("ready %d\n", ::getpid());
  std::fflush(stdout);
  std::string line;
  std::thread churner;
  while (std::getline(std::cin, line)) {
    if (line == "spawn-and-exit" && !g_churn.exchange(true)) churner = std::thread(churn);
    if (line.rfind("load ", 0) == 0) {
      void* lib = ::dlopen(line.substr(5).c_str(), RTLD_NOW);
      auto* spin = lib ? reinterpret_cast<void (*)()>(::dlsym(lib, "plugin_spin")) : nullptr;
      if (!spin) {
        std::fprintf(stderr, "stack_target: %s\n", ::dlerror());
        _exit(3);
      }
      std::thread([spin] { name_thread("plugin"); spin(); }).detach();
      std::printf("loaded\n");
      std::fflush(stdout);
    }
  }
  _exit(0);  // the other threads never end
}
