// periscope's CPU profile of a real program against Linux perf's on the same load: redis-server
// under redis-benchmark, profiled by `periscope record` and then by `perf record -F 999
// --call-graph dwarf`, one after the other. The leaf function of a sample is its innermost user
// frame (time in a system call belongs to the call's wrapper in both: periscope sees no kernel
// frames, and perf's kernel frames are skipped). perf's ten heaviest leaves must hold the same
// share of the samples in periscope's profile, within 3 points (with ~6,000 samples each, the
// difference of two estimates of a 50% share has a standard deviation of 0.9 points).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <vector>

#include "tests/e2e/server_process.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/real_servers.h"

namespace periscope::test {
namespace {

constexpr int kSeconds = 8;

// glibc exports one function under several names (read, __read, __libc_read, __GI___libc_read) and
// each tool picks one; a versioned dynamic symbol may carry its version (@@GLIBC_2.34).
std::string canonical(std::string name) {
  name = name.substr(0, name.find('@'));
  if (name.rfind("__GI_", 0) == 0) name.erase(0, 5);
  name.erase(0, name.find_first_not_of('_'));
  if (name.rfind("libc_", 0) == 0) name.erase(0, 5);
  return name;
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

struct LeafShares {
  std::map<std::string, double> samples;  // canonical leaf -> samples
  double total = 0;
  double percent(const std::string& leaf) const {
    auto it = samples.find(leaf);
    return it == samples.end() || total == 0 ? 0 : 100 * it->second / total;
  }
};

// A folded line's last frame; "module+0x1234" (no name) counts as "[unknown] module", as perf says.
LeafShares periscope_leaves(const std::string& folded) {
  LeafShares out;
  std::istringstream in(folded);
  for (std::string line; std::getline(in, line);) {
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const double count = std::stod(line.substr(space + 1));
    std::string leaf = line.substr(0, space);
    leaf = leaf.substr(leaf.rfind(';') + 1);
    const auto plus = leaf.find("+0x");
    leaf = plus != std::string::npos && leaf.find(' ') == std::string::npos ? "[unknown] " + leaf.substr(0, plus)
                                                                              : canonical(leaf);
    out.samples[leaf] += count;
    out.total += count;
  }
  return out;
}

// `perf script -F tid,ip,sym,dso --no-inline`: a header line per sample, then its frames, each
// after a tab, innermost first ("ffffffff8123 do_syscall_64 ([kernel.kallsyms])", "108f36 epoll_wait
// (/usr/lib/x86_64-linux-gnu/libc.so.6)"), then a blank line. A sample with no user frame
// counts as "[kernel]".
LeafShares perf_leaves(const std::string& script) {
  LeafShares out;
  std::istringstream in(script);
  std::string line, leaf;
  bool in_sample = false;
  auto finish = [&] {
    if (!in_sample) return;
    out.samples[leaf.empty() ? "[kernel]" : leaf] += 1;
    out.total += 1;
    in_sample = false;
    leaf.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      finish();
      continue;
    }
    if (line[0] != '\t') {  // a sample's header: its tid, right-aligned
      finish();
      in_sample = true;
      continue;
    }
    if (!in_sample || !leaf.empty() || line.find("[kernel.kallsyms]") != std::string::npos) continue;
    std::istringstream fields(line);
    std::string ip, rest;
    fields >> ip;
    std::getline(fields, rest);
    rest.erase(0, rest.find_first_not_of(' '));
    const auto paren = rest.rfind(" (");
    const std::string sym = rest.substr(0, paren);
    const std::string dso = paren == std::string::npos ? "" : rest.substr(paren + 2, rest.size() - paren - 3);
    leaf = sym == "[unknown]" ? "[unknown] " + base_name(dso) : canonical(sym);
  }
  finish();
  return out;
}

// redis-server's title is "redis-server 127.0.0.1:PORT".
std::string port_in_title(pid_t pid) {
  std::string title = slurp("/proc/" + std::to_string(pid) + "/cmdline");
  title = title.substr(0, title.find('\0'));
  const auto colon = title.rfind(':');
  return colon == std::string::npos ? "" : title.substr(colon + 1);
}

bool perf_installed() { return ::access("/usr/bin/perf", X_OK) == 0; }

TEST(PerfAgreement, RedisLeafFunctionsMatchPerfWithinThreePoints) {
  if (auto why = why_real_server_cannot_run("redis"); !why.empty()) GTEST_SKIP() << why;
  if (!perf_installed()) GTEST_SKIP() << "perf is not installed (Debian: linux-perf)";
  if (agent_preload().find("san") != std::string::npos) {
    GTEST_SKIP() << "sampling accuracy is measured without sanitizers";
  }
  SocketDir sockets;
  auto server = start_real_server("redis", sockets);
  const pid_t pid = server->serving_pid();
  // One steady load through both windows (rounds of redis-benchmark would put their start-up and
  // connection phases in one window and not the other): redis names its address in its title.
  const std::string port = port_in_title(pid);
  ASSERT_FALSE(port.empty()) << slurp("/proc/" + std::to_string(pid) + "/cmdline");
  Process load({"/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", port, "-q", "-n", "1000000000", "-c", "20", "-t",
                "set", "-r", "100000"},
               {});
  std::this_thread::sleep_for(1s);  // past its connection set-up
  const std::string folded = sockets.path() + "/redis.folded";
  auto ours = periscope({"record", std::to_string(pid), "-d", std::to_string(kSeconds), "--rate", "999", "-o", folded});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  const std::string data = sockets.path() + "/perf.data";
  auto perf = run({"/usr/bin/perf", "record", "-F", "999", "--call-graph", "dwarf", "-p", std::to_string(pid), "-o", data,
                   "--", "sleep", std::to_string(kSeconds)},
                  {}, {}, kSameUser, 60s);
  ASSERT_EQ(perf.exit_code, 0) << "perf record: " << perf.out << perf.err;
  ASSERT_TRUE(process_running(load.pid())) << "redis-benchmark ended early: " << load.stderr_text();
  auto script = run({"/usr/bin/perf", "script", "-i", data, "-F", "tid,ip,sym,dso", "--no-inline"}, {}, {}, kSameUser, 120s);
  ASSERT_EQ(script.exit_code, 0) << script.err;

  const LeafShares p = periscope_leaves(slurp(folded));
  const LeafShares f = perf_leaves(script.out);
  ASSERT_GT(p.total, 0.5 * 999 * kSeconds * 0.5) << ours.err;  // redis keeps about half a core busy or more
  ASSERT_GT(f.total, 0.5 * 999 * kSeconds * 0.5) << perf.err;
  std::vector<std::pair<double, std::string>> heaviest;
  for (const auto& [leaf, n] : f.samples) heaviest.emplace_back(n, leaf);
  std::sort(heaviest.rbegin(), heaviest.rend());
  heaviest.resize(std::min<size_t>(heaviest.size(), 10));
  std::printf("%-36s %8s %10s %7s   (%.0f samples by perf, %.0f by periscope)\n", "leaf function", "perf", "periscope",
              "diff", f.total, p.total);
  for (const auto& [n, leaf] : heaviest) {
    std::printf("%-36s %7.1f%% %9.1f%% %+7.1f\n", leaf.c_str(), f.percent(leaf), p.percent(leaf),
                p.percent(leaf) - f.percent(leaf));
  }
  std::fflush(stdout);
  for (const auto& [n, leaf] : heaviest) {
    EXPECT_NEAR(p.percent(leaf), f.percent(leaf), 3.0) << leaf << "; periscope said: " << ours.err;
  }
}

}  // namespace
}  // namespace periscope::test
