// Real Debian servers with the agent preloaded, looked at as their operator would: does the
// server still serve and stop cleanly, does `periscope ps` list each of its processes, do the
// agent's stacks agree with ptrace's, does a profile under load find the server's hot code, do
// metrics answer, and do repeated `stacks` leave the host's memory and descriptors alone.
// Each test starts its own server (real_servers.h) and stops it at the end, so a check that
// breaks the host shows as an unclean shutdown of that test.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

#include "tests/e2e/background_load.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_checks.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {
namespace {

// The processes of `expected`, still running, that `periscope ps` does not list.
std::vector<ServerProcess> unlisted(const std::vector<ServerProcess>& expected) {
  auto listed = agents_listed();
  std::vector<ServerProcess> missing;
  for (const auto& p : expected) {
    if (!listed.count(p.pid) && process_running(p.pid)) missing.push_back(p);
  }
  return missing;
}

std::string describe(const ServerProcess& p) {
  return "pid " + std::to_string(p.pid) + " (" + p.role + ", user " + user_of(p.pid) + ")";
}

class RealServerTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = why_real_server_cannot_run(GetParam()); !why.empty()) GTEST_SKIP() << why;
    server_ = start_real_server(GetParam(), sockets_);
    // An operator looks once the server is up, and its agents are part of that: an agent in a
    // forked child starts a moment after the fork. Whether they all come up is
    // PsListsEveryProcess's to say; here it is only waited for.
    wait_until([&] { return unlisted(server_->processes()).empty(); }, 15s);
  }

  // Every test ends as an operator's day does: the server stops, cleanly.
  void TearDown() override {
    if (!server_) return;
    if (pid_t pid = server_->serving_pid(); pid > 0 && process_running(pid)) report_usage("at_end", pid);
    std::string why = server_->stop();
    if (!stop_checked_) {
      EXPECT_TRUE(why.empty()) << GetParam() << " did not shut down cleanly after this test's checks: " << why;
    }
    server_.reset();
  }

  // For the test that checks the shutdown itself (TearDown then does not say it again).
  std::string stop_server() {
    stop_checked_ = true;
    return server_->stop();
  }

  // Prints and records what the kernel says the process uses.
  ProcUsage report_usage(const std::string& when, pid_t pid) {
    ProcUsage usage = proc_usage(pid);
    std::cout << "[" << GetParam() << "] pid " << pid << " " << when << ": VmRSS " << usage.rss_kib << " KiB, "
              << usage.fds << " open fds" << std::endl;
    RecordProperty("rss_kib_" + when, std::to_string(usage.rss_kib));
    RecordProperty("fds_" + when, std::to_string(usage.fds));
    return usage;
  }

  SocketDir sockets_;
  std::unique_ptr<RealServer> server_;
  bool stop_checked_ = false;
};

TEST_P(RealServerTest, ServesLoadAndShutsDownCleanly) {
  std::string errors = server_->load();
  EXPECT_TRUE(errors.empty()) << GetParam() << " did not serve its load with the agent preloaded:\n" << errors;
  std::string why = stop_server();
  EXPECT_TRUE(why.empty()) << GetParam() << " did not shut down cleanly: " << why;
}

TEST_P(RealServerTest, PsListsEveryProcess) {
  // An agent in a forked child starts a moment after the fork: wait for it, with a deadline.
  std::vector<ServerProcess> expected, missing;
  bool all = wait_until([&] {
    expected = server_->processes();
    missing = unlisted(expected);
    return missing.empty();
  }, 15s);
  std::vector<std::string> lines;
  for (const auto& p : missing) lines.push_back(describe(p));
  std::vector<std::string> seen;
  for (const auto& p : expected) seen.push_back(describe(p));
  EXPECT_TRUE(all) << "periscope ps does not list " << missing.size() << " of the " << expected.size()
                   << " processes of " << GetParam() << " after 15 s:\n  " << join(lines, "\n  ")
                   << "\nthe server's processes:\n  " << join(seen, "\n  ") << server_->log_tail();
}

// nginx and postgres set their titles over argv and pad the rest with NULs ("nginx: worker
// process", "postgres: 15/main: checkpointer"): ps shows the title as the process set it, and
// info the arguments without the padding.
TEST_P(RealServerTest, PsShowsTitlesAndInfoArgvWithoutPadding) {
  auto listed = agents_listed();
  for (const auto& p : server_->processes()) {
    SCOPED_TRACE(describe(p));
    if (!listed.count(p.pid) || !process_running(p.pid)) continue;  // PsListsEveryProcess says so
    const std::string title = listed[p.pid].value("title", "");
    EXPECT_EQ(title, cmdline_of(p.pid)) << "the title as the process set it, with no trailing padding";
    // "worker" in "nginx: worker process", "checkpointer" in "postgres: 15/main: checkpointer" (the
    // postmaster keeps its command line).
    if (GetParam() == "nginx" || (GetParam() == "postgres" && p.role != "postmaster")) {
      EXPECT_NE(title.find(p.role), std::string::npos) << title;
    }
    auto info = periscope({"exec", "--json", std::to_string(p.pid), "info"});
    if (info.exit_code != 0) continue;  // a backend that ended meanwhile
    auto argv = nlohmann::json::parse(info.out)["cmdline"];
    ASSERT_TRUE(argv.is_array()) << info.out;
    EXPECT_LT(argv.size(), 16u) << "padding shown as empty arguments: " << argv.dump();
    for (const auto& word : argv) EXPECT_FALSE(word.get<std::string>().empty()) << argv.dump();
  }
}

TEST_P(RealServerTest, AgentStacksAgreeWithPtrace) {
  for (const auto& p : server_->processes()) {
    SCOPED_TRACE(describe(p));
    StacksComparison comparison;
    nlohmann::json agent;
    // Threads come and go and move between two captures: a difference must persist to count.
    for (int attempt = 0; attempt < 3; ++attempt) {
      agent = stacks_json(p.pid, false);
      comparison = compare_stacks(agent, stacks_json(p.pid, true));
      if (comparison.agrees()) break;
    }
    std::cout << "[" << GetParam() << "] " << describe(p) << ": " << comparison.summary << std::endl;
    EXPECT_EQ(agent.value("method", ""), "agent") << "periscope stacks did not go through the agent";
    // An idle server's threads sleep; comparing none of them would prove nothing.
    EXPECT_GT(comparison.compared, 0) << comparison.summary;
    EXPECT_TRUE(comparison.threads.empty()) << comparison.summary << "; threads differ:\n  "
                                            << join(comparison.threads, "\n  ");
    EXPECT_TRUE(comparison.frames.empty()) << comparison.summary << "; top functions differ:\n  "
                                           << join(comparison.frames, "\n  ");
    EXPECT_TRUE(comparison.no_stack.empty()) << comparison.summary << "; the agent has no stack for "
                                             << comparison.no_stack.size() << " threads:\n  "
                                             << join(comparison.no_stack, "\n  ");
  }
}

TEST_P(RealServerTest, RecordUnderLoadFindsHotFunctions) {
  std::string warmup = server_->load();  // also lets nginx show which worker the kernel favours
  ASSERT_TRUE(warmup.empty()) << warmup;
  BackgroundLoad load(*server_);
  pid_t pid = server_->serving_pid();
  const std::string file = sockets_.path() + "/profile.folded";
  auto r = periscope({"record", std::to_string(pid), "-d", "3", "-o", file});
  std::string load_errors = load.stop();
  ASSERT_EQ(r.exit_code, 0) << "periscope record " << pid << " failed: " << r.out << r.err;
  FoldedProfile profile = read_folded(file);
  std::cout << "[" << GetParam() << "] " << r.err << r.out << std::flush;
  EXPECT_TRUE(load_errors.empty()) << GetParam() << " failed requests while being profiled:\n" << load_errors;
  ASSERT_GT(profile.samples, 0) << "no samples in " << file << "; record said: " << r.err << r.out;

  std::string binary = exe_of(pid);
  auto exported = exported_functions(binary);
  bool hot = false, from_binary = false;
  for (const auto& [function, samples] : profile.functions) {
    for (const auto& hint : server_->hot_functions()) hot |= function.find(hint) != std::string::npos;
    from_binary |= names_code_of(function, binary, exported);
  }
  std::string heaviest = join(profile.heaviest(15), "\n  ");
  std::cout << "[" << GetParam() << "] heaviest of " << profile.samples << " samples: " << join(profile.heaviest(6), ", ")
            << std::endl;
  EXPECT_TRUE(hot) << "no function of " << profile.samples << " samples names any of {"
                   << join(server_->hot_functions(), ", ") << "}; the heaviest:\n  " << heaviest;
  EXPECT_TRUE(from_binary) << "no function of " << profile.samples << " samples is from " << binary
                           << "; the heaviest:\n  " << heaviest;
}

TEST_P(RealServerTest, MetricsAnswer) {
  for (const auto& p : server_->processes()) {
    auto r = periscope({"metrics", std::to_string(p.pid)});
    EXPECT_EQ(r.exit_code, 0) << "periscope metrics for " << describe(p) << ": " << r.err;
    EXPECT_NE(r.out.find("process_resident_memory_bytes"), std::string::npos) << describe(p) << ":\n" << r.out;
    EXPECT_NE(r.out.find("process_open_fds"), std::string::npos) << describe(p) << ":\n" << r.out;
  }
}

TEST_P(RealServerTest, StacksLeaveMemoryAndDescriptorsAlone) {
  constexpr long kRssSlackKib = 8 * 1024;
  constexpr int kFdSlack = 2;
  pid_t pid = server_->serving_pid();
  ProcUsage before = report_usage("before_stacks", pid);
  for (int i = 0; i < 3; ++i) {
    auto r = periscope({"stacks", std::to_string(pid)});
    EXPECT_EQ(r.exit_code, 0) << "periscope stacks #" << i + 1 << ": " << r.err;
    // Through ptrace the agent would not be measured at all.
    EXPECT_NE(r.out.find("captured in-process by the agent"), std::string::npos)
        << "periscope stacks #" << i + 1 << " did not go through the agent:\n" << r.out.substr(0, r.out.find('\n'));
  }
  ProcUsage after = report_usage("after_3_stacks", pid);
  ASSERT_TRUE(process_running(pid)) << GetParam() << " (pid " << pid << ") is gone after three periscope stacks";
  EXPECT_LE(after.fds - before.fds, kFdSlack)
      << "open fds of pid " << pid << " grew from " << before.fds << " to " << after.fds
      << " over three stacks; new:\n  " << join(new_fds(before, after), "\n  ");
  EXPECT_LE(after.rss_kib - before.rss_kib, kRssSlackKib)
      << "VmRSS of pid " << pid << " grew from " << before.rss_kib << " KiB to " << after.rss_kib
      << " KiB over three stacks (" << (after.rss_kib - before.rss_kib) / 1024 << " MiB)";
}

INSTANTIATE_TEST_SUITE_P(RealServer, RealServerTest, testing::ValuesIn(real_server_names()),
                         [](const testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace periscope::test
