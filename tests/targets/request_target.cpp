// A host that uses the request API (linked with libperiscope, started in main). Commands on stdin,
// one per line, each answered with "done <what>" once finished:
//   slow NAME MS [ID]   a request NAME spinning MS ms in burn_in_checkout() on thread "worker"
//   sleep NAME MS       a request NAME sleeping MS ms in sleep_in_checkout() on thread "sleeper"
//   fast N              N requests named "fast" that end at once
//   migrate MS          request "migrating" begins on thread "starter", detaches, and is resumed on
//                       thread "resumer", which spins MS ms in spin_after_migration()
//   orphan              thread "orphan" begins request "orphaned" (C API) and exits without ending it
//   threshold NAME MS   periscope::set_slow_threshold(NAME, MS)
//   reopen-then-serve DIR N   like a daemon: close every descriptor from 3 up, open N data files in
//                       DIR, then serve its first request; answers "done dirty K": K files that
//                       got bytes nobody wrote to them
//   together N MS       N requests "together-0".."together-N-1" begin at once on N threads
//                       "worker-I", each spinning MS ms in burn_in_checkout()
//   mixed MS            for MS ms, thread "mixer" serves in turn a request "checkout" (3 ms in
//                       burn_in_checkout), a request "search" (1 ms in burn_in_search, 1 ms in
//                       burn_in_rank inside a nested request "rank", 1 ms in burn_in_search) and spins 1 ms in
//                       burn_outside_requests, serving nothing
#include <atomic>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "periscope/periscope.h"

namespace {

thread_local volatile unsigned long g_sink = 0;  // per thread: the spinning threads share no data

void spin_for(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 1;
}

// noipa: distinct functions, never folded into one by identical-code folding.
__attribute__((noinline, noipa)) void burn_in_checkout(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 1;
}

__attribute__((noinline, noipa)) void spin_after_migration(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 3;
}

__attribute__((noinline, noipa)) void burn_in_search(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 5;
}

__attribute__((noinline, noipa)) void burn_in_rank(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 7;
}

__attribute__((noinline, noipa)) void burn_outside_requests(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) g_sink = g_sink + 9;
}

__attribute__((noinline, noipa)) void sleep_in_checkout(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // resumes after our signal's EINTR
  asm volatile("");
}

void named(const char* name) { pthread_setname_np(pthread_self(), name); }

void serve_mixed(int ms) {
  named("mixer");
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    {
      periscope::Request checkout("checkout");
      burn_in_checkout(3);
    }
    {
      periscope::Request search("search");
      burn_in_search(1);
      {
        periscope::Request rank("rank");
        burn_in_rank(1);
      }
      burn_in_search(1);  // search's own again once rank ended
    }
    burn_outside_requests(1);
  }
}

void done(const std::string& what) {
  std::printf("done %s\n", what.c_str());
  std::fflush(stdout);
}

}  // namespace

// The files the host opens on the numbers it just closed must hold only what it wrote: nothing.
int reopen_then_serve(const std::string& dir, int n) {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 1024; ++fd) close(fd);
  }
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    paths.push_back(dir + "/data-" + std::to_string(i));
    (void)open(paths.back().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  { periscope::Request first("first"); }
  int dirty = 0;
  for (const auto& path : paths) {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && st.st_size != 0) ++dirty;
  }
  return dirty;
}

int main() {
  if (auto s = periscope::start(); !s.ok()) {
    std::fprintf(stderr, "request_target: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("ready %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name;
    in >> cmd;
    if (cmd == "slow") {
      int ms = 0;
      unsigned long long id = 0;
      in >> name >> ms >> id;
      std::thread([&] {
        named("worker");
        periscope::Request request(name, id);
        burn_in_checkout(ms);
      }).join();
      done(name);
    } else if (cmd == "sleep") {
      int ms = 0;
      in >> name >> ms;
      std::thread([&] {
        named("sleeper");
        periscope::Request request(name);
        sleep_in_checkout(ms);
      }).join();
      done(name);
    } else if (cmd == "fast") {
      int n = 0;
      in >> n;
      for (int i = 0; i < n; ++i) periscope::Request request("fast");
      done("fast");
    } else if (cmd == "migrate") {
      int ms = 0;
      in >> ms;
      std::optional<periscope::Request> moving;
      std::thread([&] {
        named("starter");
        periscope::Request request("migrating", 77);
        spin_for(10);
        request.detach();
        moving.emplace(std::move(request));
      }).join();
      std::thread([&] {
        named("resumer");
        moving->attach();
        spin_after_migration(ms);
        moving.reset();
      }).join();
      done("migrating");
    } else if (cmd == "orphan") {
      std::thread([] {
        named("orphan");
        periscope_request_begin("orphaned");
      }).join();
      done("orphan");
    } else if (cmd == "together") {
      int n = 0, ms = 0;
      in >> n >> ms;
      std::atomic<int> waiting{n};
      std::vector<std::thread> threads;
      for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          named(("worker-" + std::to_string(i)).c_str());
          for (--waiting; waiting.load() > 0;) {
          }
          periscope::Request request("together-" + std::to_string(i), static_cast<unsigned long long>(i));
          burn_in_checkout(ms);
        });
      }
      for (auto& t : threads) t.join();
      done("together");
    } else if (cmd == "mixed") {
      int ms = 0;
      in >> ms;
      std::thread(serve_mixed, ms).join();
      done("mixed");
    } else if (cmd == "reopen-then-serve") {
      std::string dir;
      int n = 0;
      in >> dir >> n;
      done("dirty " + std::to_string(reopen_then_serve(dir, n)));
    } else if (cmd == "threshold") {
      int ms = 0;
      in >> name >> ms;
      if (!periscope::set_slow_threshold(name, std::chrono::milliseconds(ms)).ok()) return 2;
      done("threshold");
    }
  }
  return 0;
}
