// What the watchdog costs with many requests in flight: the agent's thread CPU time over a window
// while N requests (default 10000) are open and none is slow, against the same window with none
// open, in one run. Target: <= 1% of one core at 10,000 in flight.
// Usage: build/bench/watchdog_scan_cost [IN_FLIGHT] [SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "periscope/periscope.h"

namespace {

pid_t agent_tid() {
  DIR* d = ::opendir("/proc/self/task");
  pid_t found = 0;
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "periscope") found = std::atoi(e->d_name);
  }
  if (d) ::closedir(d);
  return found;
}

uint64_t cpu_ns(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  uint64_t ns = 0;
  in >> ns;
  return ns;
}

double share_of_core(pid_t tid, int seconds) {
  uint64_t before = cpu_ns(tid);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  return static_cast<double>(cpu_ns(tid) - before) / (seconds * 1e9) * 100;
}

}  // namespace

int main(int argc, char** argv) {
  const int in_flight = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
  char tmpl[] = "/tmp/periscope-bench-XXXXXX";
  periscope::Options options;
  options.socket_dir = ::mkdtemp(tmpl);
  options.slow_threshold = std::chrono::hours(1);
  if (auto s = periscope::start(options); !s.ok()) {
    std::fprintf(stderr, "watchdog_scan_cost: %s\n", s.message().c_str());
    return 1;
  }
  pid_t tid = 0;
  for (int i = 0; i < 1000 && tid == 0; ++i) {  // the agent's thread names itself as it starts
    tid = agent_tid();
    if (tid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (tid == 0) {
    std::fprintf(stderr, "watchdog_scan_cost: no agent thread found\n");
    return 1;
  }
  double idle = share_of_core(tid, seconds);
  std::vector<std::optional<periscope::Request>> open(static_cast<size_t>(in_flight));
  int tracked = 0;
  for (int i = 0; i < in_flight; ++i) {
    open[static_cast<size_t>(i)].emplace("GET /item", static_cast<unsigned long long>(i));
    tracked += open[static_cast<size_t>(i)]->tracked();
  }
  double busy = share_of_core(tid, seconds);
  std::printf("%-40s %12s\n", "agent thread, share of one core", "measured");
  std::printf("%-40s %11.4f%%\n", "no request in flight", idle);
  std::printf("%-40s %11.4f%%\n", (std::to_string(tracked) + " requests in flight").c_str(), busy);
  std::printf("%-40s %11.4f%%  (target <= 1%%)\n", "added by the scans", busy - idle);
  return tracked == in_flight ? 0 : 1;
}
