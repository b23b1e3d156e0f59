// A host with many idle threads for the stack benchmarks: N threads (default 1000), each blocked
// three calls deep (park_a -> park_b -> park_c) on a pipe that never delivers. Prints "ready <pid>"
// and lives until stdin closes.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

int g_pipe[2];

__attribute__((noinline)) void park_c() {
  char c;
  while (::read(g_pipe[0], &c, 1) != 0) {
  }
}
__attribute__((noinline)) void park_b() {
  park_c();
  asm volatile("");
}
__attribute__((noinline)) void park_a() {
  park_b();
  asm volatile("");
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (::pipe(g_pipe) != 0) return 1;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([i] {
      pthread_setname_np(pthread_self(), ("parked-" + std::to_string(i)).c_str());
      park_a();
    });
  }
  std::printf("ready %d\n", ::getpid());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  _exit(0);
}
