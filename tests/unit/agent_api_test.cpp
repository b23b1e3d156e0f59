// The public API in-process: start, idempotence, host commands and variables, stop.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "periscope/periscope.h"
#include "tests/e2e/harness.h"

namespace periscope {
namespace {

using test::RawConnection;

TEST(AgentApi, StartIsIdempotentAndStopRemovesTheSocket) {
  test::SocketDir dir;
  Options options;
  options.socket_dir = dir.path();
  ASSERT_FALSE(running());
  Status s = start(options);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(running());
  EXPECT_EQ(socket_path(), dir.socket_for(::getpid()));
  EXPECT_TRUE(start(options).ok()) << "a second start while running is fine";
  EXPECT_TRUE(test::file_exists(socket_path()));
  stop();
  EXPECT_FALSE(running());
  EXPECT_EQ(socket_path(), "");
  EXPECT_FALSE(test::file_exists(dir.socket_for(::getpid())));
  stop();  // stopping twice is harmless
  ASSERT_TRUE(start(options).ok()) << "and it starts again";
  stop();
}

TEST(AgentApi, HostCommandsAndVariablesAreServed) {
  test::SocketDir dir;
  Options options;
  options.socket_dir = dir.path();
  int knob = 3;
  ASSERT_TRUE(add_variable("knob", [&] { return std::to_string(knob); },
                           [&](const std::string& v) { knob = std::stoi(v); }, "a knob"));
  ASSERT_TRUE(add_command("greet", "NAME", "say hello", [](const std::vector<std::string>& a) {
    return "hello " + a[0] + "\n";
  }));
  EXPECT_FALSE(add_command("greet", "", "dup", [](const std::vector<std::string>&) { return std::string(); }).ok());
  EXPECT_FALSE(add_command("Bad Name", "", "", [](const std::vector<std::string>&) { return std::string(); }).ok());
  EXPECT_FALSE(add_command("nohandler", "", "", nullptr).ok());
  ASSERT_TRUE(start(options).ok());
  {
    RawConnection c(socket_path());
    c.read_until("periscope> ");
    c.send("greet \"big world\"\n");
    EXPECT_EQ(c.read_until("periscope> "), "hello big world\nperiscope> ");
    c.send("set knob 12\n");
    c.read_until("periscope> ");
    EXPECT_EQ(knob, 12);
    c.send("set knob twelve\n");
    EXPECT_NE(c.read_until("periscope> ").find("error: set: cannot set knob to 'twelve'"), std::string::npos);
  }
  stop();
}

TEST(AgentApi, DisabledOptionsDoNotStart) {
  Options options;
  options.enabled = false;
  Status s = start(options);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("disabled"), std::string::npos);
  EXPECT_FALSE(running());
}

TEST(AgentApi, UnusableSocketDirIsReportedNotThrown) {
  Options options;
  options.socket_dir = "relative/path";
  Status s = start(options);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("absolute path"), std::string::npos) << s.message();
  options.socket_dir = "/tmp/" + std::string(120, 'x');
  s = start(options);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(running());
}

TEST(AgentApi, OptionsFromEnvironmentReportBadValues) {
  ::setenv("PERISCOPE_MAX_CONNECTIONS", "lots", 1);
  ::setenv("PERISCOPE_IDLE_TIMEOUT", "5", 1);
  ::setenv("PERISCOPE_FORK", "off", 1);
  Options o = Options::from_env();
  EXPECT_EQ(o.max_connections, 16) << "a malformed value keeps the default";
  EXPECT_EQ(o.idle_timeout, std::chrono::seconds(5));
  EXPECT_FALSE(o.restart_after_fork);
  ::unsetenv("PERISCOPE_MAX_CONNECTIONS");
  ::unsetenv("PERISCOPE_IDLE_TIMEOUT");
  ::unsetenv("PERISCOPE_FORK");
}

TEST(AgentApi, CApiStartsAndStops) {
  test::SocketDir dir;
  ::setenv("PERISCOPE_SOCKET_DIR", dir.path().c_str(), 1);
  EXPECT_EQ(periscope_start(), 0);
  EXPECT_EQ(periscope_running(), 1);
  periscope_stop();
  EXPECT_EQ(periscope_running(), 0);
  ::unsetenv("PERISCOPE_SOCKET_DIR");
}

}  // namespace
}  // namespace periscope
