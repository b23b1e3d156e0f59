// The HTTP endpoint against those it must refuse: another local user, a web page (CSRF with the
// bodies a form can send, DNS rebinding with a foreign Host, a cross-site <img>), and who it lets
// in: the owner, root, the holder of the token, and anyone for /metrics.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <csignal>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <vector>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// curl as another user: "STATUS\nBODY".
RunResult curl_as(uid_t uid, const std::string& url, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(uid),
                                "--clear-groups", "/usr/bin/curl", "-s", "-w", "\n%{http_code}\n"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return run(argv);
}

int status_of(const RunResult& r) {
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();  // run() ends every line it read
  auto nl = out.rfind('\n');
  return nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1);
}

std::string log_level(const DemoWithHttp& demo) {
  return periscope({"exec", std::to_string(demo.pid()), "get", "log_level"}).out;
}

TEST(HttpGuard, AnotherUserReadsMetricsButNotStacksOrCommands) {
  if (::geteuid() != 0) GTEST_SKIP() << "running curl as another uid needs root (setpriv)";
  SocketDir dir;
  DemoWithHttp demo(dir);
  const std::string base = "http://" + demo.admin();
  auto metrics = curl_as(kNobody, base + "/metrics");
  EXPECT_EQ(status_of(metrics), 200) << metrics.out << metrics.err;
  for (const char* path : {"/debug/stacks", "/debug/cmd/info", "/debug/slow", "/debug/pprof/profile?seconds=1"}) {
    auto r = curl_as(kNobody, base + path);
    EXPECT_EQ(status_of(r), 401) << path << ": " << r.out;
    EXPECT_NE(r.out.find("uid 65534 may not use"), std::string::npos) << r.out;
  }
  auto set = curl_as(kNobody, base + "/debug/cmd/set?arg=log_level&arg=debug", {"-X", "POST"});
  EXPECT_EQ(status_of(set), 401) << set.out;
  EXPECT_EQ(log_level(demo), "info\n") << "unchanged";
  auto status = periscope({"exec", "--json", std::to_string(demo.pid()), "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "nobody started a profile";
}

// A TCP connection whose socket belongs to `uid` (the kernel records the creator's fsuid).
RawConnection connect_as(uid_t uid, const std::string& address) {
  ::setfsuid(uid);
  RawConnection c = RawConnection::tcp(address);
  ::setfsuid(0);
  return c;
}

TEST(HttpGuard, ASlowSenderOfAnotherUserCannotHoldTheEndpoint) {
  if (::geteuid() != 0) GTEST_SKIP() << "a socket of another uid needs root (setfsuid)";
  SocketDir dir;
  DemoWithHttp demo(dir);  // 16 connections, 10 s to send a request
  std::vector<RawConnection> slow;
  int refused = 0;
  for (int i = 0; i < 16; ++i) {
    slow.push_back(connect_as(kNobody, demo.admin()));
    slow.back().send("GET /metr");  // and the rest never
    std::string reply = slow.back().read_until("\n", 200ms);
    if (reply.find("503") != std::string::npos) {
      ++refused;
      EXPECT_NE(slow.back().read_until("uid 65534\n", 1s).find("too many connections from uid 65534"),
                std::string::npos);
    }
  }
  EXPECT_EQ(refused, 12) << "a quarter of the 16 connections for a peer other than the owner";
  int served = 0;
  for (int i = 0; i < 20; ++i) served += http_request(demo.admin(), "GET", "/metrics").status == 200 ? 1 : 0;
  EXPECT_EQ(served, 20) << "the owner is never crowded out";
  auto metrics = http_request(demo.admin(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("periscope_http_connections_total{result=\"refused_per_peer\"} 12"), std::string::npos)
      << metrics.body;
}

TEST(HttpGuard, AProfileWhoseClientHangsUpStopsAtOnce) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  const std::string pid = std::to_string(demo.pid());
  auto running = [&] {
    auto status = periscope({"exec", "--json", pid, "profile", "status"});
    return nlohmann::json::parse(status.out).value("running", false);
  };
  {
    RawConnection scraper = RawConnection::tcp(demo.admin());
    scraper.send("GET /debug/pprof/profile?seconds=600 HTTP/1.1\r\nHost: " + demo.admin() + "\r\n\r\n");
    ASSERT_TRUE(wait_until(running)) << "the profile started";
  }  // the scraper gives up: its connection closes
  EXPECT_TRUE(wait_until([&] { return !running(); }, 3s)) << "stopped with its client, not after 600 s";
  auto metrics = http_request(demo.admin(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("periscope_http_connections_total{result=\"abandoned\"} 1"), std::string::npos)
      << metrics.body;
}

TEST(HttpGuard, TheTokenBesideTheSocketLetsAnotherUserIn) {
  if (::geteuid() != 0) GTEST_SKIP() << "running curl as another uid needs root (setpriv)";
  SocketDir dir;
  DemoWithHttp demo(dir);
  const std::string token_file = dir.path() + "/" + std::to_string(demo.pid()) + ".token";
  struct stat st{};
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0) << token_file;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string token = read_file(token_file);
  EXPECT_EQ(token.size(), 64u);
  auto r = curl_as(kNobody, "http://" + demo.admin() + "/debug/cmd/info", {"-H", "Authorization: Bearer " + token});
  EXPECT_EQ(status_of(r), 200) << r.out;
  auto wrong = curl_as(kNobody, "http://" + demo.admin() + "/debug/cmd/info", {"-H", "Authorization: Bearer nope"});
  EXPECT_EQ(status_of(wrong), 401);
}

TEST(HttpGuard, TheOwnerIsServedAndEveryReplyForbidsSniffing) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  auto r = http_request(demo.admin(), "GET", "/debug/cmd/info");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("X-Content-Type-Options: nosniff"), std::string::npos) << r.headers;
  EXPECT_EQ(http_request(demo.admin(), "GET", "/metrics").status, 200);
}

TEST(HttpGuard, AForeignHostIsRefusedSoRebindingReadsNothing) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  for (const char* path : {"/debug/stacks", "/metrics", "/debug/cmd/vars"}) {
    auto r = http_request(demo.admin(), "GET", path, {"Host: attacker.example:" + demo.admin().substr(demo.admin().rfind(':') + 1)});
    EXPECT_EQ(r.status, 421) << path << ": " << r.body;
  }
  DemoWithHttp named(dir, {{"PERISCOPE_HTTP_HOSTS", "admin.internal, other"}});
  EXPECT_EQ(http_request(named.admin(), "GET", "/metrics", {"Host: admin.internal"}).status, 200);
}

TEST(HttpGuard, CrossSiteFormsAndImagesChangeNothing) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  const std::string set = "/debug/cmd/set?arg=log_level&arg=debug";
  for (const std::string& type : {std::string("text/plain"), std::string("application/x-www-form-urlencoded"),
                                  std::string("multipart/form-data; boundary=x")}) {
    auto r = http_request(demo.admin(), "POST", set,
                          {"Origin: https://evil.example", "Content-Type: " + type, "Sec-Fetch-Site: cross-site"},
                          "arg=log_level&arg=debug");
    EXPECT_EQ(r.status, 403) << type << ": " << r.body;
  }
  auto old_browser = http_request(demo.admin(), "POST", set, {"Origin: http://evil.example"}, "x");
  EXPECT_EQ(old_browser.status, 403) << "Origin alone, without Sec-Fetch-Site";
  EXPECT_EQ(log_level(demo), "info\n");
  auto img = http_request(demo.admin(), "GET", "/debug/pprof/profile?seconds=3600", {"Sec-Fetch-Site: cross-site"});
  EXPECT_EQ(img.status, 403);
  auto status = periscope({"exec", "--json", std::to_string(demo.pid()), "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "no hour of sampling";
  auto own = http_request(demo.admin(), "POST", set, {"Origin: http://" + demo.admin(), "Sec-Fetch-Site: same-origin"});
  EXPECT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(log_level(demo), "debug\n");
}

TEST(HttpGuard, TheTokenFileGoesWithTheProcess) {
  SocketDir dir;
  std::string token_file;
  {
    AgentTarget host(dir, {{"PERISCOPE_HTTP", "127.0.0.1:0"}});
    token_file = dir.path() + "/" + std::to_string(host.pid()) + ".token";
    ASSERT_TRUE(wait_until([&] { return file_exists(token_file); })) << token_file;
    host.process().close_stdin();
    EXPECT_EQ(host.process().wait(), 0);
  }
  EXPECT_FALSE(file_exists(token_file)) << "removed at exit";
  {
    DemoWithHttp killed(dir);
    token_file = dir.path() + "/" + std::to_string(killed.pid()) + ".token";
    ASSERT_TRUE(file_exists(token_file));
    killed.process().kill(SIGKILL);
    killed.process().wait();
  }
  periscope({"ps"}, dir.env());
  EXPECT_FALSE(file_exists(token_file)) << "a killed process's token is removed by the next viewer";
}

}  // namespace
}  // namespace periscope::test
