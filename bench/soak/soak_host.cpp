// The host of the soak test (bench/soak/soak.sh) and of the connection-abuse benchmark
// (bench/connection_abuse.sh). It never calls the agent: the agent comes by LD_PRELOAD (or not at
// all, PERISCOPE_DISABLE=1). It links libperiscope only to open periscope::Request scopes, which
// cost nothing while no agent runs.
//
//   soak_host soak PLUGIN [--seed N] [--rounds N] [--workers N] [--ops N] [--slow-ms MS] [--leak 1]
//     Rounds of work. Each round starts WORKERS threads that allocate and free heavily (blocks of
//     16 B .. 1 MiB, some freed by another thread), throw and catch C++ exceptions through deep
//     stacks, start and join short-lived threads, dlopen PLUGIN, call it and dlclose it, and open
//     periscope::Request scopes, two of them slower than MS (the watchdog's threshold); meanwhile
//     the main thread forks children that compute, sometimes exec `true`, and exit. Every result
//     depends only on (seed, round): each round prints "round R checksum X", so a run with the
//     agent can be compared line by line with one without.
//     --rounds N: exactly N rounds. Without it, rounds go on until "quit" on stdin; "snapshot" on
//     stdin prints, between two rounds (every thread of the host joined, no child alive), the
//     process's open descriptors and threads: what is left there is the agent's.
//     At the end: totals, and "result PASS" unless a block was corrupted or a child failed.
//     --leak 1 loses a descriptor and a thread every round: soak.sh must then fail (its self-test).
//
//   soak_host cpu ROUNDS
//     Fixed single-threaded CPU work (~40-frame stacks, ~2 ms a round) started by a line on stdin;
//     prints "work_wall_seconds" and "work_cpu_seconds", then waits for another line and exits.
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "periscope/periscope.h"

namespace {

// ---- deterministic numbers ----

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(mix64(seed)) {}
  uint64_t next() { return state = mix64(state); }
  uint64_t below(uint64_t n) { return next() % n; }
};

uint64_t combine(uint64_t acc, uint64_t v) { return mix64(acc ^ v) + 0x632be59bd9b4e019ull; }

struct Options {
  std::string plugin;
  uint64_t seed = 1;
  long rounds = 0;  // 0: until "quit"
  int workers = 8;
  long ops = 8000;
  int slow_ms = 20;
  bool leak = false;
};

struct Totals {
  std::atomic<uint64_t> allocations{0}, bytes{0}, handed_off{0}, corrupt{0}, exceptions{0},
      threads{0}, dlopens{0}, plugin_throws{0}, dl_failures{0}, requests{0}, slow_requests{0}, forks{0},
      execs{0}, child_failures{0};
};
Totals g_totals;

// ---- memory: blocks that carry a hash of their own contents ----

struct BlockHeader {
  uint64_t hash;
  uint64_t size;  // payload bytes after the header
};

uint64_t fill_and_hash(unsigned char* p, size_t n, uint64_t seed) {
  uint64_t h = mix64(seed ^ n);
  uint64_t word = seed;
  for (size_t i = 0; i < n; i += 8) {
    word = mix64(word + i);
    std::memcpy(p + i, &word, n - i < 8 ? n - i : 8);
  }
  for (size_t i = 0; i < n; i += 64) h = combine(h, p[i]);
  return combine(h, n ? p[n - 1] : 0);
}

struct Block {
  BlockHeader* header = nullptr;
  uint64_t seed = 0;  // what the contents were made from, to check them when freed
};

size_t pick_size(Rng& rng) {
  uint64_t r = rng.below(1000);
  if (r < 700) return 16 + rng.below(240);        // small: tcache and fastbins
  if (r < 960) return 256 + rng.below(16 * 1024);  // medium: the arenas' bins
  if (r < 995) return 64 * 1024 + rng.below(128 * 1024);
  return 256 * 1024 + rng.below(768 * 1024);       // large: mmap'd chunks
}

Block make_block(Rng& rng) {
  size_t n = pick_size(rng);
  Block b;
  b.seed = rng.next();
  b.header = static_cast<BlockHeader*>(std::malloc(sizeof(BlockHeader) + n));
  if (!b.header) std::abort();
  b.header->size = n;
  b.header->hash = fill_and_hash(reinterpret_cast<unsigned char*>(b.header + 1), n, b.seed);
  g_totals.allocations.fetch_add(1, std::memory_order_relaxed);
  g_totals.bytes.fetch_add(n, std::memory_order_relaxed);
  return b;
}

// Checks the contents against a fresh fill from the same seed, then frees the block.
void free_block(Block& b) {
  if (!b.header) return;
  const size_t n = b.header->size;
  std::vector<unsigned char> expect(n);
  uint64_t h = fill_and_hash(expect.data(), n, b.seed);
  if (h != b.header->hash || std::memcmp(expect.data(), b.header + 1, n) != 0) {
    g_totals.corrupt.fetch_add(1, std::memory_order_relaxed);
  }
  std::free(b.header);
  b.header = nullptr;
}

// Blocks made on one thread and freed on another (remote frees into other arenas).
struct Handoff {
  std::mutex mu;
  std::vector<Block> blocks;
  void put(Block b) {
    std::lock_guard lock(mu);
    blocks.push_back(b);
  }
  bool take(Block* b) {
    std::lock_guard lock(mu);
    if (blocks.empty()) return false;
    *b = blocks.back();
    blocks.pop_back();
    return true;
  }
};
Handoff g_handoff;

// ---- exceptions through deep stacks ----

struct SoakError {
  uint64_t value;
};

struct Unwound {  // every frame has one: its destructor runs as the exception passes
  uint64_t* acc;
  uint64_t v;
  ~Unwound() { *acc = combine(*acc, v); }
};

__attribute__((noinline)) uint64_t throw_deep(int depth, uint64_t v, uint64_t* acc) {
  Unwound frame{acc, static_cast<uint64_t>(depth)};
  if (depth == 0) {
    if (v % 3 == 0) throw std::runtime_error("soak " + std::to_string(v % 100000));
    throw SoakError{v};
  }
  return throw_deep(depth - 1, mix64(v), acc) + 1;  // not a tail call
}

uint64_t exception_round(Rng& rng) {
  uint64_t acc = 0;
  int depth = 16 + static_cast<int>(rng.below(200));
  uint64_t v = rng.next();
  try {
    acc = throw_deep(depth, v, &acc);
  } catch (const SoakError& e) {
    acc = combine(acc, e.value);
  } catch (const std::runtime_error& e) {
    acc = combine(acc, std::strtoull(e.what() + 5, nullptr, 10));
  }
  g_totals.exceptions.fetch_add(1, std::memory_order_relaxed);
  return acc;
}

// ---- dlopen / dlclose ----

using PluginMix = uint64_t (*)(uint64_t, int);

uint64_t plugin_round(const std::string& path, Rng& rng) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    g_totals.dl_failures.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  g_totals.dlopens.fetch_add(1, std::memory_order_relaxed);
  uint64_t out = 0;
  auto mix = reinterpret_cast<PluginMix>(::dlsym(handle, "soak_plugin_mix"));
  if (!mix) {
    g_totals.dl_failures.fetch_add(1, std::memory_order_relaxed);
  } else {
    for (int i = 0; i < 4; ++i) {
      uint64_t x = rng.next();
      try {
        out = combine(out, mix(x, 8 + static_cast<int>(rng.below(64))));
      } catch (const std::exception& e) {  // thrown inside the plugin, caught here
        out = combine(out, std::strtoull(e.what() + 13, nullptr, 10) + 7);
        g_totals.plugin_throws.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  ::dlclose(handle);
  return out;
}

// ---- short-lived threads ----

__attribute__((noinline)) uint64_t small_job(uint64_t seed) {
  std::vector<uint64_t> v(64 + seed % 512);
  uint64_t h = seed;
  for (auto& x : v) x = h = mix64(h);
  for (auto x : v) h = combine(h, x);
  return h;
}

uint64_t churn_threads(Rng& rng) {
  uint64_t seeds[3] = {rng.next(), rng.next(), rng.next()};
  uint64_t results[3] = {0, 0, 0};
  std::thread a([&] { results[0] = small_job(seeds[0]); });
  std::thread b([&] { results[1] = small_job(seeds[1]); });
  std::thread c([&] {
    Rng rng_c(seeds[2]);
    results[2] = exception_round(rng_c);
  });
  a.join();
  b.join();
  c.join();
  g_totals.threads.fetch_add(3, std::memory_order_relaxed);
  return combine(combine(results[0], results[1]), results[2]);
}

// ---- slow requests: time-dependent, so they never feed a checksum ----

__attribute__((noinline)) void sleep_while_slow(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // the watchdog's signal may cut it short
  asm volatile("");
}

__attribute__((noinline)) void spin_while_slow(int ms) {
  static thread_local volatile uint64_t sink = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) sink = sink + 1;
}

// ---- one worker of one round ----

uint64_t worker(const Options& o, long round, int index) {
  Rng rng(o.seed * 1000003ull + static_cast<uint64_t>(round) * 1009ull + static_cast<uint64_t>(index));
  uint64_t sum = 0;
  std::vector<Block> slots(256);
  for (long op = 0; op < o.ops; ++op) {
    if (op % 1000 == 0) {
      // Requests of the watchdog around chunks of the work; two a round are slow on purpose.
      periscope::Request request(index == 0 ? "soak/alloc" : "soak/alloc-other", static_cast<unsigned long long>(op));
      g_totals.requests.fetch_add(1, std::memory_order_relaxed);
      if (op == 0 && index == 0) {
        sleep_while_slow(o.slow_ms * 5);
        g_totals.slow_requests.fetch_add(1, std::memory_order_relaxed);
      }
      if (op == 0 && index == 1) {
        spin_while_slow(o.slow_ms * 3);
        g_totals.slow_requests.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Block& slot = slots[rng.below(slots.size())];
    if (slot.header) {
      if (rng.below(8) == 0) {
        g_handoff.put(slot);  // someone else frees it
        slot.header = nullptr;
        g_totals.handed_off.fetch_add(1, std::memory_order_relaxed);
      } else {
        free_block(slot);
      }
    }
    slot = make_block(rng);
    sum = combine(sum, slot.header->hash);
    Block foreign;
    if (rng.below(8) == 0 && g_handoff.take(&foreign)) free_block(foreign);
    if (op % 500 == 250) sum = combine(sum, exception_round(rng));
    if (op % 4000 == 2000) sum = combine(sum, churn_threads(rng));
    if (op % 2000 == 1999) sum = combine(sum, plugin_round(o.plugin, rng));
  }
  for (auto& b : slots) free_block(b);
  return sum;
}

// ---- forks ----

__attribute__((noinline)) uint64_t child_work(uint64_t seed) {
  uint64_t h = seed;
  std::vector<std::string> strings;
  for (int i = 0; i < 200; ++i) {
    strings.push_back(std::to_string(h = mix64(h)));
    if (i % 50 == 49) {
      try {
        throw_deep(20, h, &h);
      } catch (...) {
        h = combine(h, 1);
      }
    }
  }
  for (auto& s : strings) h = combine(h, s.size());
  return h;
}

// Forks one child that computes, reports through a pipe and exits (one in four execs `true`
// first); returns the child's result, or a marker that spoils the checksum if it failed.
uint64_t fork_child(uint64_t seed, int kind) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return 0xbad;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return 0xbad;
  }
  if (pid == 0) {
    ::close(fds[0]);
    uint64_t result = child_work(seed);
    ssize_t w = ::write(fds[1], &result, sizeof result);
    (void)w;
    if (kind == 3) {
      ::execlp("true", "true", static_cast<char*>(nullptr));
      ::_exit(99);
    }
    if (kind == 1) ::_exit(0);  // no atexit handlers, no destructors (the child's agent too)
    std::exit(0);
  }
  ::close(fds[1]);
  uint64_t result = 0xbad;
  ssize_t r = ::read(fds[0], &result, sizeof result);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_totals.forks.fetch_add(1, std::memory_order_relaxed);
  if (kind == 3) g_totals.execs.fetch_add(1, std::memory_order_relaxed);
  if (r != sizeof result || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    g_totals.child_failures.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "soak_host: child %d failed: status 0x%x, read %zd\n", pid, status, r);
    return 0xbad;
  }
  return result;
}

uint64_t run_round(const Options& o, long round) {
  std::vector<uint64_t> sums(static_cast<size_t>(o.workers));
  std::vector<std::thread> threads;
  for (int i = 0; i < o.workers; ++i) {
    threads.emplace_back([&, i] { sums[static_cast<size_t>(i)] = worker(o, round, i); });
  }
  g_totals.threads.fetch_add(static_cast<uint64_t>(o.workers), std::memory_order_relaxed);
  uint64_t forks = mix64(o.seed ^ (static_cast<uint64_t>(round) << 20));
  for (int k = 0; k < 4; ++k) forks = combine(forks, fork_child(mix64(forks + k), (static_cast<int>(round) + k) % 4));
  for (auto& t : threads) t.join();
  Block leftover;
  while (g_handoff.take(&leftover)) free_block(leftover);
  uint64_t sum = forks;
  for (auto s : sums) sum = combine(sum, s);
  return sum;
}

// ---- the host's own view of its descriptors and threads ----

void print_snapshot(long after_round) {
  std::vector<std::string> fds;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int self = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
      char target[256] = {0};
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      fds.push_back(std::string(e->d_name) + " " + (n > 0 ? target : "?"));
    }
    ::closedir(d);
  }
  std::vector<std::string> tasks;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char comm[64] = {0};
      if (FILE* f = std::fopen((std::string("/proc/self/task/") + e->d_name + "/comm").c_str(), "r")) {
        if (!std::fgets(comm, sizeof comm, f)) comm[0] = 0;
        std::fclose(f);
      }
      comm[std::strcspn(comm, "\n")] = 0;
      tasks.push_back(std::string(e->d_name) + " " + comm);
    }
    ::closedir(d);
  }
  std::printf("snapshot after_round %ld fds %zu tasks %zu\n", after_round, fds.size(), tasks.size());
  for (auto& f : fds) std::printf("snapshot-fd %s\n", f.c_str());
  for (auto& t : tasks) std::printf("snapshot-task %s\n", t.c_str());
  std::printf("snapshot-end\n");
  std::fflush(stdout);
}

// A line from stdin if one is ready, without blocking.
std::string poll_command() {
  pollfd p{0, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return {};
  char buf[256];
  ssize_t n = ::read(0, buf, sizeof buf - 1);
  if (n <= 0) return "quit";  // stdin closed
  buf[n] = 0;
  return buf;
}

int soak(const Options& o) {
  const auto started = std::chrono::steady_clock::now();
  long round = 0;
  std::printf("ready %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  for (;;) {
    if (o.rounds > 0 && round >= o.rounds) break;
    if (o.rounds == 0) {
      std::string cmd = poll_command();
      if (cmd.find("snapshot") != std::string::npos) print_snapshot(round);
      if (cmd.find("quit") != std::string::npos) break;
    }
    ++round;
    if (o.leak) {  // self-test of soak.sh's leak checks: one descriptor and one thread lost a round
      (void)!::open("/dev/null", O_RDONLY);
      std::thread([] {
        for (;;) ::pause();  // the agent's signals end each pause(), not the thread
      }).detach();
    }
    uint64_t sum = run_round(o, round);
    std::printf("round %ld checksum %016" PRIx64 "\n", round, sum);
    std::fflush(stdout);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto& t = g_totals;
  std::printf("total rounds %ld seconds %.1f\n", round, secs);
  std::printf("total allocations %" PRIu64 " bytes %" PRIu64 " handed_off %" PRIu64 " corrupt %" PRIu64 "\n",
              t.allocations.load(), t.bytes.load(), t.handed_off.load(), t.corrupt.load());
  std::printf("total threads %" PRIu64 " exceptions %" PRIu64 " dlopens %" PRIu64 " plugin_throws %" PRIu64
              " dl_failures %" PRIu64 "\n",
              t.threads.load(), t.exceptions.load(), t.dlopens.load(), t.plugin_throws.load(), t.dl_failures.load());
  std::printf("total forks %" PRIu64 " execs %" PRIu64 " child_failures %" PRIu64 " requests %" PRIu64
              " slow_requests %" PRIu64 "\n",
              t.forks.load(), t.execs.load(), t.child_failures.load(), t.requests.load(), t.slow_requests.load());
  bool ok = t.corrupt == 0 && t.child_failures == 0 && t.dl_failures == 0;
  std::printf("result %s\n", ok ? "PASS" : "FAIL");
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// ---- fixed CPU work for the connection-abuse benchmark ----

volatile uint64_t g_sink = 0;

__attribute__((noinline, noipa)) void spin(unsigned long iterations) {
  for (unsigned long i = 0; i < iterations; ++i) g_sink = g_sink + i;
}

__attribute__((noinline, noipa)) void deep(int depth, unsigned long iterations) {
  if (depth == 0) return spin(iterations);
  deep(depth - 1, iterations);
  asm volatile("");
}

double thread_cpu_seconds() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int cpu(long rounds) {
  std::printf("ready %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  char line[64];
  if (!std::fgets(line, sizeof line, stdin)) return 1;
  const double cpu_started = thread_cpu_seconds();
  const auto wall_started = std::chrono::steady_clock::now();
  for (long r = 0; r < rounds; ++r) deep(38, 1000000);
  std::printf("work_wall_seconds %.4f\nwork_cpu_seconds %.4f\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_started).count(),
              thread_cpu_seconds() - cpu_started);
  std::fflush(stdout);
  if (!std::fgets(line, sizeof line, stdin)) return 0;
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: soak_host soak PLUGIN [--seed N] [--rounds N] [--workers N] [--ops N] [--slow-ms MS] [--leak 1]\n"
               "       soak_host cpu ROUNDS\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string mode = argv[1];
  if (mode == "cpu") return cpu(std::atol(argv[2]));
  if (mode != "soak") return usage();
  Options o;
  o.plugin = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    long v = std::atol(argv[i + 1]);
    if (flag == "--seed") o.seed = static_cast<uint64_t>(v);
    else if (flag == "--rounds") o.rounds = v;
    else if (flag == "--workers") o.workers = static_cast<int>(v);
    else if (flag == "--ops") o.ops = v;
    else if (flag == "--slow-ms") o.slow_ms = static_cast<int>(v);
    else if (flag == "--leak") o.leak = v != 0;
    else return usage();
  }
  if (o.workers < 2 || o.ops < 1) return usage();
  return soak(o);
}
