// A host written in C (tests/targets/c_host.c, compiled as C) uses the whole C API; the real CLI
// reads what it registered.
#include <gtest/gtest.h>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

class CHost {
 public:
  explicit CHost(const SocketDir& dir) : process({target_path("c_host")}, dir.env()) {
    auto line = process.read_line();
    if (!line || line->rfind("socket ", 0) != 0) {
      throw std::runtime_error("c_host did not start: " + process.stderr_text());
    }
    socket = line->substr(7);
  }
  std::string pid() const { return std::to_string(process.pid()); }
  Process process;
  std::string socket;
};

TEST(CApi, SocketPathIsTheAgentsAndTheHostStopsCleanly) {
  SocketDir dir;
  CHost host(dir);
  EXPECT_EQ(host.socket, dir.socket_for(host.process.pid()));
  host.process.close_stdin();
  EXPECT_EQ(host.process.wait(), 0) << host.process.stderr_text();
  EXPECT_FALSE(file_exists(host.socket)) << "periscope_stop removes the socket";
}

TEST(CApi, CommandsAnswerAndFailWithTheHostsWords) {
  SocketDir dir;
  CHost host(dir);
  auto greet = periscope({"exec", host.pid(), "greet", "ops", "team"});
  EXPECT_EQ(greet.exit_code, 0) << greet.err;
  EXPECT_EQ(greet.out, "hello from C ops team\n");
  auto help = periscope({"exec", host.pid(), "help"});
  EXPECT_NE(help.out.find("says hello from C"), std::string::npos) << help.out;
  auto refused = periscope({"exec", host.pid(), "refuse"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("refused by the C host"), std::string::npos) << refused.err;
  auto extra = periscope({"exec", host.pid(), "refuse", "x"});
  EXPECT_EQ(extra.exit_code, 1) << "the usage \"\" takes no arguments";
}

TEST(CApi, VariablesReadSetAndRejectValues) {
  SocketDir dir;
  CHost host(dir);
  EXPECT_EQ(periscope({"exec", host.pid(), "get", "level"}).out, "3\n");
  EXPECT_EQ(periscope({"exec", host.pid(), "set", "level", "7"}).exit_code, 0);
  EXPECT_EQ(periscope({"exec", host.pid(), "get", "level"}).out, "7\n");
  auto rejected = periscope({"exec", host.pid(), "set", "level", "eleven"});
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find("level must be 0..9"), std::string::npos) << rejected.err;
  EXPECT_EQ(periscope({"exec", host.pid(), "get", "level"}).out, "7\n");
}

TEST(CApi, RequestsOverTheirThresholdAreReportedSlow) {
  SocketDir dir;
  CHost host(dir);
  host.process.write_stdin("slow\n");
  ASSERT_EQ(host.process.read_line(), "done");
  auto slow = periscope({"slow", host.pid()});
  EXPECT_EQ(slow.exit_code, 0) << slow.err;
  EXPECT_NE(slow.out.find("'c-slow' id 7"), std::string::npos) << "threshold 50 ms set from C\n" << slow.out;
}

}  // namespace
}  // namespace periscope::test
