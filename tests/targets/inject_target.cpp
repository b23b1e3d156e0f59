// A program that knows nothing about periscope and is started without it, for `periscope
// inject`: WORKERS threads burn CPU in rounds (inject_target_work), one thread sleeps in
// clock_nanosleep, and the main thread reads commands from stdin with read(2). A system call
// that returns EINTR is counted: an injector that does not restore an interrupted call exactly
// shows up there.
//
// `inject_target churn` has no waiting thread at all: the main thread and two more allocate and
// free in a loop forever (no stdin), so an injector must find a thread outside malloc.
//
//   rounds    -> "rounds N"   rounds completed by all workers so far
//   eintr     -> "eintr N"    interrupted system calls seen
//   quit      -> exits 0
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::atomic<long> g_rounds{0};
std::atomic<long> g_eintr{0};
std::atomic<bool> g_quit{false};

__attribute__((noinline)) double inject_target_work(int round) {
  double x = round;
  for (int i = 0; i < 200000; ++i) x = x * 1.0000001 + 0.5 / (i + 1);
  return x;
}

void worker() {
  volatile double sink = 0;
  for (int round = 0; !g_quit.load(std::memory_order_relaxed); ++round) {
    sink = sink + inject_target_work(round);
    g_rounds.fetch_add(1, std::memory_order_relaxed);
  }
}

void sleeper() {
  while (!g_quit.load()) {
    timespec t{0, 200 * 1000 * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &t, &t) == EINTR) g_eintr.fetch_add(1);
  }
}

void reply(const std::string& line) {
  std::string out = line + "\n";
  (void)!::write(STDOUT_FILENO, out.data(), out.size());
}

// One line from stdin through read(2) alone (no stdio buffering), "" at EOF.
bool read_line(std::string& line) {
  line.clear();
  char c = 0;
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) {
      g_eintr.fetch_add(1);
      continue;
    }
    if (n <= 0) return false;
    if (c == '\n') return true;
    line += c;
  }
}

}  // namespace

__attribute__((noinline)) void inject_target_churn() {
  for (;;) {
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i) blocks.push_back(std::malloc(static_cast<size_t>(16 + i * 24)));
    for (void* b : blocks) std::free(b);
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "churn") {
    reply("ready");
    std::thread(inject_target_churn).detach();
    std::thread(inject_target_churn).detach();
    inject_target_churn();
  }
  const int workers = argc > 1 ? std::atoi(argv[1]) : 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back(worker);
  if (workers > 0) threads.emplace_back(sleeper);
  reply("ready");
  std::string line;
  while (read_line(line)) {
    if (line == "rounds") reply("rounds " + std::to_string(g_rounds.load()));
    else if (line == "eintr") reply("eintr " + std::to_string(g_eintr.load()));
    else if (line == "quit") break;
    else reply("unknown " + line);
  }
  g_quit = true;
  for (auto& t : threads) t.join();
  return 0;
}
