// A program whose heap is known: blocks of three sizes kept by three named functions (through
// malloc, std::vector's operator new and new[]), and heavy churn that keeps nothing. It prints
// what each function keeps ("keeps retain_small_blocks 33554432"), then "ready", and reads stdin:
// "leak" starts leaking 256 KiB every 50 ms in leak_slowly, "free" lets everything go, "forks"
// forks 200 children that allocate and exit while two threads allocate (a fork may come while a
// sample is being recorded: a child inheriting a held lock hangs), "quit" ends.
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

namespace {

volatile unsigned char g_sink;
std::vector<void*> g_small;
std::vector<std::vector<char>> g_vectors;
std::vector<char*> g_large;
std::vector<void*> g_leaked;
std::atomic<bool> g_leaking{false};
std::atomic<bool> g_quitting{false};

__attribute__((noipa)) void retain_small_blocks(size_t count) {  // 64-byte blocks, malloc
  for (size_t i = 0; i < count; ++i) {
    void* p = std::malloc(64);
    std::memset(p, 1, 64);
    g_small.push_back(p);
  }
}

__attribute__((noipa)) void retain_vectors(size_t count) {  // 4 KiB vectors, operator new
  for (size_t i = 0; i < count; ++i) g_vectors.emplace_back(4096, static_cast<char>(i));
}

__attribute__((noipa)) void retain_large_blocks(size_t count) {  // 1 MiB arrays, operator new[]
  for (size_t i = 0; i < count; ++i) {
    char* p = new char[1 << 20];
    std::memset(p, 2, 1 << 20);
    g_large.push_back(p);
  }
}

__attribute__((noipa)) void churn(size_t total) {  // allocates `total` bytes, keeps none
  unsigned seed = 12345;
  for (size_t done = 0; done < total;) {
    seed = seed * 1103515245 + 12345;
    const size_t size = 16 + (seed >> 8) % 4081;
    auto* p = static_cast<unsigned char*>(std::malloc(size));
    p[0] = static_cast<unsigned char>(size);
    g_sink = p[size / 2];
    std::free(p);
    done += size;
  }
}

__attribute__((noipa)) void leak_slowly() {
  void* p = std::malloc(256 * 1024);
  std::memset(p, 3, 256 * 1024);
  g_leaked.push_back(p);
}

// Each child allocates (and so samples) and exits; a child that does not end in 10 s is hung.
std::string fork_while_allocating() {
  std::atomic<bool> stop{false};
  std::vector<std::thread> churners;
  for (int i = 0; i < 2; ++i) {
    churners.emplace_back([&] {
      while (!stop.load()) churn(size_t{1} << 20);
    });
  }
  std::string result = "forks ok";
  for (int i = 0; i < 200 && result == "forks ok"; ++i) {
    const pid_t child = fork();
    if (child == 0) {
      churn(size_t{4} << 20);
      _exit(0);
    }
    int status = 0;
    bool ended = false;
    for (int waited = 0; waited < 1000 && !ended; ++waited) {
      ended = waitpid(child, &status, WNOHANG) == child;
      if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!ended) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      result = "forks: child " + std::to_string(i) + " hung";
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      result = "forks: child " + std::to_string(i) + " failed";
    }
  }
  stop = true;
  for (auto& t : churners) t.join();
  return result;
}

}  // namespace

int main() {
  constexpr size_t kSmall = 512 * 1024, kVectors = 8192, kLarge = 24;
  g_small.reserve(kSmall);
  g_vectors.reserve(kVectors);
  g_large.reserve(kLarge);
  g_leaked.reserve(100000);
  retain_small_blocks(kSmall);
  retain_vectors(kVectors);
  retain_large_blocks(kLarge);
  churn(size_t{1} << 30);
  std::printf("keeps retain_small_blocks %zu\n", kSmall * 64);
  std::printf("keeps retain_vectors %zu\n", kVectors * 4096);
  std::printf("keeps retain_large_blocks %zu\n", kLarge << 20);
  std::printf("churned churn %zu\n", size_t{1} << 30);
  std::printf("ready\n");
  std::fflush(stdout);
  // Joined before main returns: a thread pushing into g_leaked while exit destroys it crashed the
  // program at "quit" (1 run in 25).
  std::thread leaker([] {
    while (!g_quitting.load()) {
      if (g_leaking.load()) leak_slowly();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "leak") g_leaking = true;
    if (line == "quit") break;
    if (line == "free") {
      for (void* p : g_small) std::free(p);
      g_small.clear();
      g_vectors.clear();
      for (char* p : g_large) delete[] p;
      g_large.clear();
    }
    if (line == "forks") {
      std::printf("%s\n", fork_while_allocating().c_str());
      std::fflush(stdout);
      continue;
    }
    std::printf("ok %s\n", line.c_str());
    std::fflush(stdout);
  }
  g_quitting = true;
  leaker.join();
  return 0;
}
