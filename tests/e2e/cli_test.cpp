// The periscope CLI against real processes: ps, exec, attach, and every way they can fail.
#include <gtest/gtest.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(Cli, PsListsPreloadedProcessWithNameAndSocket) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"ps"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("PID"), std::string::npos);
  std::string row;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(std::to_string(target.pid()) + " ", 0) == 0) row = line;
  }
  ASSERT_FALSE(row.empty()) << r.out;
  EXPECT_NE(row.find("host_target"), std::string::npos) << row;
  EXPECT_NE(row.find(target.socket()), std::string::npos) << row;
}

TEST(Cli, PsJsonIsParseableAndHasUptime) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"ps", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out);
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e["pid"] == target.pid(); });
  ASSERT_NE(it, list.end()) << r.out;
  EXPECT_EQ((*it)["name"], "host_target");
  EXPECT_GE((*it)["uptime_s"].get<double>(), 0.0);
}

TEST(Cli, PsLeavesOutProcessesWithoutAgent) {
  SocketDir dir;
  Process plain({target_path("host_target")}, dir.env());
  ASSERT_TRUE(plain.read_line());
  auto r = periscope({"ps", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& e : nlohmann::json::parse(r.out)) EXPECT_NE(e["pid"], plain.pid());
}

TEST(Cli, ExecInfoShowsPidExeAndAgentConfig) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"exec", std::to_string(target.pid()), "info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(target_path("host_target")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("periscope 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir.path()), std::string::npos) << r.out;

  auto j = periscope({"exec", "--json", std::to_string(target.pid()), "info"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto data = nlohmann::json::parse(j.out);
  EXPECT_EQ(data["pid"], target.pid());
  EXPECT_EQ(data["agent"]["socket"], target.socket());
  EXPECT_EQ(data["agent"]["config"]["max_connections"], 16);
}

TEST(Cli, ExecThreadsShowsNamedThreadAndAgentThread) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"exec", "--json", std::to_string(target.pid()), "threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto threads = nlohmann::json::parse(r.out)["threads"];
  std::set<std::string> names;
  for (const auto& t : threads) {
    names.insert(t["name"].get<std::string>());
    EXPECT_GT(t["tid"].get<int>(), 0);
    EXPECT_GE(t["cpu_s"].get<double>(), 0.0);
  }
  EXPECT_TRUE(names.count("sleepy-worker")) << r.out;
  EXPECT_TRUE(names.count("periscope")) << r.out;
  EXPECT_EQ(threads.size(), 3u) << "main, sleepy-worker and the agent's one thread";
}

TEST(Cli, ExecUnknownCommandFailsWithOneLineAndSessionGoesOn) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"exec", std::to_string(target.pid()), "frobnicate"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
  EXPECT_EQ(periscope({"exec", std::to_string(target.pid()), "help"}).exit_code, 0);
}

TEST(Cli, ExecWrongArgumentCountShowsUsage) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"exec", std::to_string(target.pid()), "get"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("usage: get NAME"), std::string::npos) << r.err;
}

TEST(Cli, ExecDeadPidSaysNoSuchProcess) {
  Process gone({"/bin/true"}, {});
  ASSERT_EQ(gone.wait(), 0);
  auto r = periscope({"exec", std::to_string(gone.pid()), "info"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no process with PID " + std::to_string(gone.pid())), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1);
}

TEST(Cli, ExecProcessWithoutAgentSaysHowToAddOne) {
  SocketDir dir;
  Process plain({target_path("host_target")}, dir.env());
  ASSERT_TRUE(plain.read_line());
  auto r = periscope({"exec", std::to_string(plain.pid()), "info"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("has no periscope agent"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("LD_PRELOAD"), std::string::npos) << r.err;
}

TEST(Cli, DisabledAgentCreatesNoSocket) {
  SocketDir dir;
  Process p({target_path("host_target")}, {{"LD_PRELOAD", agent_preload()},
                                           {"PERISCOPE_SOCKET_DIR", dir.path()},
                                           {"PERISCOPE_DISABLE", "1"}});
  ASSERT_TRUE(p.read_line());
  auto r = periscope({"exec", std::to_string(p.pid()), "info"});
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_FALSE(file_exists(dir.socket_for(p.pid())));
}

TEST(Cli, BadUsageExitsTwoWithHint) {
  auto r = periscope({"exec", "notapid", "info"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("periscope --help"), std::string::npos) << r.err;
  auto none = periscope({"exec", "1"});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_EQ(periscope({}).exit_code, 2);
}

TEST(Cli, HelpTeachesWithExamples) {
  auto r = periscope({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("periscope attach"), std::string::npos);
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos);
}

TEST(Cli, AttachRunsScriptedCommandsFromStdin) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = run({cli_path(), "attach", std::to_string(target.pid())}, {}, "threads\nbogus\nhelp info\nquit\ninfo\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sleepy-worker"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: unknown command 'bogus'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pid, executable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bye"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("cmdline"), std::string::npos) << "commands after quit must not run";
}

TEST(Cli, AttachOnATerminalCompletesNamesAndKeepsHistory) {
  SocketDir dir;
  AgentTarget target(dir);
  // script(1) gives the REPL a pseudo-terminal, so libedit edits and completes as for a person.
  const std::string command = cli_path() + " attach " + std::to_string(target.pid());
  auto r = run({"/usr/bin/script", "-qfec", command, "/dev/null"}, {{"HOME", dir.path()}},
               "thr\t\nhel\t stac\t\nquit\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sleepy-worker"), std::string::npos) << "'thr<Tab>' ran threads:\n" << r.out;
  EXPECT_NE(r.out.find("stacks [--raw] [TID...]  every thread's stack"), std::string::npos)
      << "'hel<Tab> stac<Tab>' ran help stacks:\n" << r.out;
  std::ifstream history(dir.path() + "/.periscope_history");
  std::string saved((std::istreambuf_iterator<char>(history)), std::istreambuf_iterator<char>());
  EXPECT_NE(saved.find("threads"), std::string::npos) << saved;
}

TEST(Cli, LinkedHostVariablesAndCommandsWork) {
  SocketDir dir;
  Process demo({target_path("demo_server"), "--port", "0", "--threads", "2"}, dir.env());
  auto ready = demo.read_line();
  ASSERT_TRUE(ready && ready->find("listening") != std::string::npos);
  const std::string pid = std::to_string(demo.pid());
  ASSERT_TRUE(wait_until([&] { return file_exists(dir.socket_for(demo.pid())); }));

  auto vars = periscope({"exec", pid, "vars"});
  ASSERT_EQ(vars.exit_code, 0) << vars.err;
  EXPECT_NE(vars.out.find("log_level"), std::string::npos) << vars.out;

  auto rejected = periscope({"exec", pid, "set", "log_level", "loud"});
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find("expected one of debug, info, warn, error"), std::string::npos) << rejected.err;

  EXPECT_EQ(periscope({"exec", pid, "set", "log_level", "debug"}).exit_code, 0);
  EXPECT_EQ(periscope({"exec", pid, "get", "log_level"}).out, "debug\n");

  auto readonly = periscope({"exec", pid, "set", "requests_total", "5"});
  EXPECT_EQ(readonly.exit_code, 1);
  EXPECT_NE(readonly.err.find("read-only"), std::string::npos) << readonly.err;

  auto burn = periscope({"exec", pid, "burn", "5"});
  EXPECT_EQ(burn.exit_code, 0) << burn.err;
  EXPECT_NE(burn.out.find("primes: "), std::string::npos);
  auto burn_bad = periscope({"exec", pid, "burn", "-1"});
  EXPECT_EQ(burn_bad.exit_code, 1);
  EXPECT_NE(burn_bad.err.find("MS must be 0..10000"), std::string::npos) << burn_bad.err;
}

}  // namespace
}  // namespace periscope::test
