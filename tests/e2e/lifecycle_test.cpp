// The agent's life in its host: exit, stale sockets, fork and exec.
#include <gtest/gtest.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

TEST(Lifecycle, SocketIsRemovedAtNormalExit) {
  SocketDir dir;
  AgentTarget target(dir);
  ASSERT_TRUE(file_exists(target.socket()));
  target.process().write_stdin("exit\n");
  ASSERT_EQ(target.process().wait(), 0);
  EXPECT_FALSE(file_exists(target.socket()));
}

TEST(Lifecycle, StaleSocketsOfDeadProcessesAreCleanedUp) {
  SocketDir dir;
  Process gone({"/bin/true"}, {});
  ASSERT_EQ(gone.wait(), 0);
  std::string stale = dir.socket_for(gone.pid());
  std::ofstream(stale) << "";
  std::string other = dir.path() + "/notes.txt";
  std::ofstream(other) << "not ours";
  AgentTarget target(dir);
  EXPECT_FALSE(file_exists(stale));
  EXPECT_TRUE(file_exists(other)) << "only <pid>.sock files of dead pids are removed";
}

TEST(Lifecycle, KilledHostLeavesNoListedAgent) {
  SocketDir dir;
  AgentTarget target(dir);
  pid_t pid = target.pid();
  target.process().kill(SIGKILL);
  target.process().wait();
  auto r = periscope({"exec", std::to_string(pid), "info"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no process with PID"), std::string::npos) << r.err;
}

TEST(Lifecycle, ForkedChildGetsItsOwnAgent) {
  SocketDir dir;
  AgentTarget target(dir);
  target.process().write_stdin("fork\n");
  auto line = target.process().read_line();
  ASSERT_TRUE(line && line->rfind("child ", 0) == 0);
  pid_t child = std::stoi(line->substr(6));
  ASSERT_TRUE(wait_until([&] { return file_exists(dir.socket_for(child)); }));
  auto r = periscope({"exec", "--json", std::to_string(child), "info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["pid"], child);
  EXPECT_EQ(info["agent"]["socket"], dir.socket_for(child));
  EXPECT_EQ(info["threads"], 2) << "the child has its main thread and its own agent thread";
  EXPECT_EQ(periscope({"exec", std::to_string(target.pid()), "info"}).exit_code, 0) << "parent unaffected";
  auto stacks = periscope({"stacks", std::to_string(child)});
  EXPECT_EQ(stacks.exit_code, 0) << stacks.err;
  EXPECT_NE(stacks.out.find("captured in-process by the agent"), std::string::npos) << stacks.out;
  EXPECT_NE(stacks.out.find("fork_child"), std::string::npos) << "the child's main thread is in fork_child:\n"
                                                               << stacks.out;
  auto ps = nlohmann::json::parse(periscope({"ps", "--json"}).out);
  int seen = 0;
  for (const auto& e : ps) seen += (e["pid"] == child || e["pid"] == target.pid());
  EXPECT_EQ(seen, 2);
}

TEST(Lifecycle, ForkOffLeavesChildWithoutAgent) {
  SocketDir dir;
  AgentTarget target(dir, {{"PERISCOPE_FORK", "off"}});
  target.process().write_stdin("fork\n");
  auto line = target.process().read_line();
  ASSERT_TRUE(line && line->rfind("child ", 0) == 0);
  pid_t child = std::stoi(line->substr(6));
  auto r = periscope({"exec", std::to_string(child), "info"});
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.err.find("has no periscope agent"), std::string::npos) << r.err;
  // The child closed its copy of the parent's listening socket: only the parent holds it now.
  EXPECT_EQ(periscope({"exec", std::to_string(target.pid()), "info"}).exit_code, 0);
  std::string fd_dir = "/proc/" + std::to_string(child) + "/fd";
  auto ls = run({"/bin/ls", "-l", fd_dir});
  EXPECT_EQ(ls.out.find("socket:"), std::string::npos)
      << "child:\n" << ls.out << "parent:\n" << run({"/bin/ls", "-l", "/proc/" + std::to_string(target.pid()) + "/fd"}).out;
}

TEST(Lifecycle, ExecedImageInheritsNoAgentFd) {
  SocketDir dir;
  AgentTarget target(dir);
  RawConnection session(target.socket());  // an accepted session fd exists in the host now
  session.read_until("periscope> ");
  target.process().write_stdin("list-fds\n");
  std::string listing;
  while (auto line = target.process().read_line()) {
    if (*line == "done") break;
    listing += *line + "\n";
  }
  ASSERT_NE(listing.find("0 ->"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("socket:"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("anon_inode:"), std::string::npos) << listing;
}

}  // namespace
}  // namespace periscope::test
