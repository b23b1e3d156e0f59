// The manhole socket spoken to directly, as a person with socat or another program would:
// text mode, JSON mode, and input that is too long, random or slow.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

constexpr const char* kPrompt = "periscope> ";

TEST(ManholeText, BannerPromptAndReadableReplies) {
  SocketDir dir;
  AgentTarget target(dir);
  RawConnection c(target.socket());
  std::string banner = c.read_until(kPrompt);
  EXPECT_NE(banner.find("attached to pid " + std::to_string(target.pid()) + " (host_target)"), std::string::npos)
      << banner;
  c.send("help\n");
  std::string help = c.read_until(kPrompt);
  for (const char* cmd : {"help", "info", "threads", "vars", "get NAME", "set NAME VALUE", "quit"}) {
    EXPECT_NE(help.find(cmd), std::string::npos) << cmd << " missing in\n" << help;
  }
  c.send("get\n");
  EXPECT_NE(c.read_until(kPrompt).find("error: get: wrong number of arguments (0); usage: get NAME"),
            std::string::npos);
  c.send("   \n");  // a blank line just prompts again
  EXPECT_EQ(c.read_until(kPrompt), kPrompt);
  c.send("set \"unterminated\n");
  EXPECT_NE(c.read_until(kPrompt).find("error: unterminated double quote"), std::string::npos);
  c.send("quit\n");
  EXPECT_NE(c.read_line().find("bye"), std::string::npos);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(ManholeText, PipelinedCommandsAnswerInOrder) {
  SocketDir dir;
  AgentTarget target(dir);
  RawConnection c(target.socket());
  c.read_until(kPrompt);
  c.send("nope1\nnope2\nnope3\n");
  std::string all = c.read_until("nope3' (type 'help' for the list)\n");
  auto p1 = all.find("nope1"), p2 = all.find("nope2"), p3 = all.find("nope3");
  ASSERT_NE(p3, std::string::npos) << all;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
}

TEST(ManholeJson, HelloFrameThenOneJsonObjectPerReply) {
  SocketDir dir;
  AgentTarget target(dir);
  RawConnection c(target.socket());
  c.send("mode json\n");
  c.read_until(kPrompt);
  std::string hello_line;
  while (hello_line.empty() || hello_line[0] != '{') hello_line = c.read_line();
  auto hello = nlohmann::json::parse(hello_line);
  EXPECT_EQ(hello["data"]["pid"], target.pid());
  EXPECT_EQ(hello["data"]["protocol"], 1);

  c.send("threads\n");
  auto threads = nlohmann::json::parse(c.read_line());
  EXPECT_TRUE(threads["ok"].get<bool>());
  EXPECT_EQ(threads["command"], "threads");
  EXPECT_TRUE(threads["data"]["threads"].is_array());

  c.send(R"({"command":"get","args":["no such var"]})" "\n");
  auto err = nlohmann::json::parse(c.read_line());
  EXPECT_FALSE(err["ok"].get<bool>());
  EXPECT_NE(err["error"].get<std::string>().find("no variable 'no such var'"), std::string::npos) << err;

  c.send("{not json\n");
  auto bad = nlohmann::json::parse(c.read_line());
  EXPECT_EQ(bad["error"], "malformed JSON request");
}

TEST(ManholeBounds, LineOfExactlyTheLimitIsAccepted) {
  SocketDir dir;
  AgentTarget target(dir);
  RawConnection c(target.socket());
  c.read_until(kPrompt);
  c.send(std::string(64 * 1024, 'x') + "\n");
  std::string reply = c.read_until(kPrompt);
  EXPECT_NE(reply.find("error: unknown command 'xxxx"), std::string::npos) << reply.substr(0, 200);
  EXPECT_LT(reply.size(), 300u) << "the echoed name is cut short";
}

TEST(ManholeBounds, OversizedLineGetsErrorAndCloseAndAgentLivesOn) {
  SocketDir dir;
  AgentTarget target(dir);
  {
    RawConnection c(target.socket());
    c.read_until(kPrompt);
    c.send(std::string(64 * 1024 + 1, 'y') + "\n");
    std::string reply = c.read_until("connection\n");
    EXPECT_NE(reply.find("error: line longer than 65536 bytes; closing connection"), std::string::npos) << reply;
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawConnection c(target.socket());
    c.read_until(kPrompt);
    c.send(std::string(1 << 20, 'z'));  // a megabyte without any newline
    EXPECT_NE(c.read_until("connection\n").find("line longer than"), std::string::npos);
    EXPECT_TRUE(c.closed_by_peer());
  }
  auto r = periscope({"exec", std::to_string(target.pid()), "info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ManholeBounds, RandomBytesGetErrorsAndAgentAnswersNextConnection) {
  SocketDir dir;
  AgentTarget target(dir);
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    RawConnection c(target.socket());
    std::string junk(8192, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    c.send(junk + "\n");
    c.send("mode json\n");
    c.send(std::string("\xff\xfe\x00garbage\n", 11));
    c.send("\x01\x02 \x03\n");
  }
  for (int i = 0; i < 3; ++i) {
    RawConnection c(target.socket());
    c.read_until(kPrompt);
    c.send("\x80\x81\xc3\x28 args\n");
    EXPECT_NE(c.read_until(kPrompt).find("error: unknown command '?\?\?(' "), std::string::npos);
  }
  RawConnection json(target.socket());
  json.send("mode json\n\xc3\x28\xa0\xa1\n");
  json.read_until("\"mode\"");
  json.read_line();
  auto frame = nlohmann::json::parse(json.read_line());  // invalid UTF-8 must not break the frame
  EXPECT_FALSE(frame["ok"].get<bool>());
  auto r = periscope({"exec", std::to_string(target.pid()), "threads"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sleepy-worker"), std::string::npos);
}

TEST(ManholeBounds, IdleSessionIsClosedWithAReason) {
  SocketDir dir;
  AgentTarget target(dir, {{"PERISCOPE_IDLE_TIMEOUT", "1"}});
  RawConnection c(target.socket());
  c.read_until(kPrompt);
  std::string last = c.read_until("closing connection\n", 5s);
  EXPECT_NE(last.find("error: idle for 1 s; closing connection"), std::string::npos) << last;
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(ManholeBounds, ConnectionsBeyondTheCapAreTurnedAwayUntilOneCloses) {
  SocketDir dir;
  AgentTarget target(dir, {{"PERISCOPE_MAX_CONNECTIONS", "2"}});
  // Sessions that just closed (AgentTarget's readiness probe) may count until the agent reads
  // their EOF: retry until two sessions of ours hold both places.
  std::unique_ptr<RawConnection> a, b;
  auto open_session = [&](std::unique_ptr<RawConnection>& c) {
    return wait_until([&] {
      c = std::make_unique<RawConnection>(target.socket());
      return c->read_until(kPrompt).find(kPrompt) != std::string::npos;
    });
  };
  ASSERT_TRUE(open_session(a));
  ASSERT_TRUE(open_session(b));
  RawConnection c(target.socket());
  EXPECT_NE(c.read_line().find("error: too many connections (limit 2); try again later"), std::string::npos);
  EXPECT_TRUE(c.closed_by_peer());
  auto busy = periscope({"exec", std::to_string(target.pid()), "info"});
  EXPECT_EQ(busy.exit_code, 5);
  EXPECT_NE(busy.err.find("too many connections"), std::string::npos) << busy.err;
  a.reset();
  EXPECT_TRUE(wait_until([&] { return periscope({"exec", std::to_string(target.pid()), "info"}).exit_code == 0; }));
}

TEST(ManholeBounds, ClientVanishingMidReplyDoesNotHurtAgent) {
  SocketDir dir;
  AgentTarget target(dir);
  for (int i = 0; i < 20; ++i) {
    RawConnection c(target.socket());
    c.send("help\nthreads\ninfo\nhelp\n");
  }  // closed without reading
  // The agent still owes those sessions their replies; once it finds them gone, it serves us.
  RunResult r;
  EXPECT_TRUE(wait_until([&] {
    r = periscope({"exec", std::to_string(target.pid()), "info"});
    return r.exit_code == 0;
  }, 5s)) << r.err;
  EXPECT_EQ(target.process().stderr_text(), "");
}

}  // namespace
}  // namespace periscope::test
