// The HTTP admin endpoint end to end: the demo server with PERISCOPE_HTTP, real HTTP clients,
// promtool, a real Prometheus server scraping it and go tool pprof reading its profile.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <regex>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

// Keeps the demo server busy with /cpu requests until destroyed.
class Load {
 public:
  explicit Load(const std::string& demo) : thread_([this, demo] {
      while (!stop_) http_request(demo, "GET", "/cpu?ms=50");
    }) {}
  ~Load() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Http, MetricsPassPromtoolAndCarryProcessAgentRequestAndHostMetrics) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  ASSERT_EQ(http_request(demo.demo(), "GET", "/fast").status, 200);
  ASSERT_EQ(http_request(demo.demo(), "GET", "/sleep?ms=1").status, 200);
  auto r = http_request(demo.admin(), "GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.headers;
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"), std::string::npos) << r.headers;
  for (const char* series : {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                             "process_max_fds ", "process_start_time_seconds ", "process_threads ",
                             "process_virtual_memory_bytes ", "periscope_profile_samples_total ",
                             "periscope_requests_total{name=\"/fast\"} 1", "demo_responses_total{route=\"/sleep\"} 1",
                             // a 1 ms sleep: never under 1 ms, and well under 100 ms even under ASan on a busy machine
                             "periscope_request_duration_seconds_bucket{name=\"/sleep\",le=\"0.001\"} 0",
                             "periscope_request_duration_seconds_bucket{name=\"/sleep\",le=\"0.1\"} 1",
                             "periscope_http_connections_total{result=\"accepted\"} ",
                             "periscope_profile_samples_lost_total{reason=\"buffer_full\"} ",
                             "periscope_profile_handler_seconds_total ", "periscope_profile_overhead_ratio ",
                             "periscope_profile_threads_unsampled "}) {
    EXPECT_NE(r.body.find(series), std::string::npos) << series << " missing from:\n" << r.body;
  }
  if (!file_exists("/usr/bin/promtool")) GTEST_SKIP() << "promtool needs the prometheus package (setup-deps)";
  auto check = run({"/usr/bin/promtool", "check", "metrics"}, {}, r.body);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST(Http, AnswersBadRequestsWithTheRightStatusAndLivesOn) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  EXPECT_EQ(http_request(demo.admin(), "GET", "/nope").status, 404);
  EXPECT_EQ(http_request(demo.admin(), "GET", "/metrics?x=%zz").status, 400);
  EXPECT_EQ(http_request(demo.admin(), "GET", "/debug/stacks?tid=abc").status, 400);
  auto get_set = http_request(demo.admin(), "GET", "/debug/cmd/set?arg=log_level&arg=debug");
  EXPECT_EQ(get_set.status, 405);
  EXPECT_NE(get_set.headers.find("Allow: POST"), std::string::npos) << get_set.headers;
  auto post_set = http_request(demo.admin(), "POST", "/debug/cmd/set?arg=log_level&arg=debug");
  EXPECT_EQ(post_set.status, 200) << post_set.body;
  EXPECT_EQ(periscope({"exec", std::to_string(demo.pid()), "get", "log_level"}).out, "debug\n");
  auto rejected = http_request(demo.admin(), "POST", "/debug/cmd/set?arg=log_level&arg=loud");
  EXPECT_EQ(rejected.status, 400);
  EXPECT_NE(rejected.body.find("expected one of"), std::string::npos) << rejected.body;
  // Garbage instead of HTTP gets a 400 and the connection closes; the endpoint still serves.
  RawConnection garbage = RawConnection::tcp(demo.admin());
  garbage.send("\x01\x02 not http\r\n\r\n");
  EXPECT_NE(garbage.read_until("\r\n").find("400"), std::string::npos);
  EXPECT_EQ(http_request(demo.admin(), "GET", "/metrics").status, 200);
}

TEST(Http, StacksSlowAndInflightAsTextAndJson) {
  SocketDir dir;
  DemoWithHttp demo(dir, {{"PERISCOPE_SLOW_MS", "100"}});
  ASSERT_EQ(http_request(demo.demo(), "GET", "/sleep?ms=400").status, 200);
  auto stacks = http_request(demo.admin(), "GET", "/debug/stacks");
  EXPECT_EQ(stacks.status, 200);
  EXPECT_NE(stacks.body.find("WorkerPool"), std::string::npos) << stacks.body;
  ASSERT_TRUE(wait_until([&] {
    auto slow = http_request(demo.admin(), "GET", "/debug/slow?format=json");
    auto data = nlohmann::json::parse(slow.body, nullptr, false);
    return slow.status == 200 && !data.is_discarded() && !data["reports"].empty() &&
           data["reports"][0]["name"] == "/sleep";
  }));
  auto inflight = http_request(demo.admin(), "GET", "/debug/inflight?format=json");
  EXPECT_EQ(inflight.status, 200);
  EXPECT_TRUE(nlohmann::json::parse(inflight.body, nullptr, false).is_object()) << inflight.body;
}

TEST(Http, SlowClientsTimeOutAndConnectionsAreCapped) {
  SocketDir dir;
  DemoWithHttp demo(dir, {{"PERISCOPE_HTTP_TIMEOUT_MS", "300"}, {"PERISCOPE_HTTP_MAX_CONNECTIONS", "2"}});
  RawConnection slow = RawConnection::tcp(demo.admin());
  slow.send("GET /metr");  // and never the rest
  RawConnection idle = RawConnection::tcp(demo.admin());
  ASSERT_TRUE(slow.connected() && idle.connected());
  auto refused = http_request(demo.admin(), "GET", "/metrics");
  EXPECT_EQ(refused.status, 503) << refused.headers << refused.body;
  EXPECT_NE(refused.headers.find("X-Content-Type-Options: nosniff"), std::string::npos) << "every reply, refusals too";
  EXPECT_TRUE(slow.closed_by_peer(3s));
  EXPECT_TRUE(idle.closed_by_peer(3s));
  auto after = http_request(demo.admin(), "GET", "/metrics");
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(after.body.find("periscope_http_connections_total{result=\"timed_out\"} 2"), std::string::npos)
      << after.body;
  EXPECT_NE(after.body.find("periscope_http_connections_total{result=\"refused_busy\"} 1"), std::string::npos);
}

TEST(Http, GoToolPprofReadsTheProfileEndpoint) {
  if (!file_exists("/usr/bin/go")) GTEST_SKIP() << "go tool pprof needs golang-go (scripts/setup-deps.sh installs it)";
  SocketDir dir;
  DemoWithHttp demo(dir);
  Load load(demo.demo());
  auto top = run({"/usr/bin/go", "tool", "pprof", "-top", "http://" + demo.admin() + "/debug/pprof/profile?seconds=2"},
                 {{"HOME", dir.path()}, {"PPROF_TMPDIR", dir.path()}}, "", static_cast<uid_t>(-1), 120s);
  ASSERT_EQ(top.exit_code, 0) << top.out << top.err;
  EXPECT_NE(top.out.find("Type: cpu"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("find_primes"), std::string::npos) << top.out;
  // A second profile while one runs is refused, not queued.
  std::thread first([&] { http_request(demo.admin(), "GET", "/debug/pprof/profile?seconds=2&mode=wall", 20s); });
  ASSERT_TRUE(wait_until([&] {
    return periscope({"exec", std::to_string(demo.pid()), "profile", "status"}).out.rfind("running", 0) == 0;
  }));
  EXPECT_EQ(http_request(demo.admin(), "GET", "/debug/pprof/profile?seconds=1").status, 409);
  first.join();
}

// One sampler, four consumers at once, none refused: a long `top`, a `record` and a pprof scrape
// that join it later, and a second `top`. Each gets its own window: the record's 2 s, not the
// sampler's whole run.
TEST(Http, TwoTopsARecordAndAPprofScrapeProfileAtOnce) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  Load load(demo.demo());
  const std::string pid = std::to_string(demo.pid());
  Process long_top({cli_path(), "top", pid, "-n", "7"}, {});
  ASSERT_TRUE(wait_until([&] {
    return periscope({"exec", pid, "profile", "status"}).out.rfind("running", 0) == 0;
  }));
  std::this_thread::sleep_for(2s);  // so that the sampler has run longer than the windows below
  const std::string folded = dir.path() + "/window.folded";
  HttpResult scrape;
  std::thread scraper([&] { scrape = http_request(demo.admin(), "GET", "/debug/pprof/profile?seconds=2", 20s); });
  RunResult top = periscope({"top", pid, "-n", "2"});
  RunResult record = periscope({"record", pid, "-d", "2", "-o", folded});
  scraper.join();

  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("find_primes"), std::string::npos) << top.out;
  ASSERT_EQ(record.exit_code, 0) << record.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(record.err, m, std::regex(R"(over ([0-9.]+) s)"))) << record.err;
  EXPECT_LT(std::stod(m[1]), 3.5) << "its own window, not the sampler's run: " << record.err;
  EXPECT_GE(std::stod(m[1]), 1.9) << record.err;
  std::stringstream text;
  text << std::ifstream(folded).rdbuf();
  EXPECT_NE(text.str().find("find_primes"), std::string::npos);
  ASSERT_EQ(scrape.status, 200) << scrape.body;
  const std::string pprof = dir.path() + "/scrape.pb.gz";
  std::ofstream(pprof, std::ios::binary) << scrape.body;
  RunResult view = periscope({"view", pprof});
  ASSERT_EQ(view.exit_code, 0) << view.err;
  EXPECT_NE(view.out.find("find_primes"), std::string::npos) << view.out;

  const auto long_top_exit = long_top.wait(120s);  // a refresh takes seconds under TSan
  ASSERT_TRUE(long_top_exit);
  EXPECT_EQ(*long_top_exit, 0) << long_top.stderr_text();
  auto status = periscope({"exec", "--json", pid, "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "the sampler stops with its last client";
  EXPECT_EQ(nlohmann::json::parse(status.out)["clients"], 0);
}

// An application command that takes long holds neither the manhole nor HTTP: it runs on a thread
// of its own, its client is told when it does not answer in time, and everyone else is served.
TEST(Http, ALongApplicationCommandHoldsNobodyElse) {
  SocketDir dir;
  DemoWithHttp demo(dir, {{"PERISCOPE_COMMAND_TIMEOUT_MS", "500"}});
  const std::string pid = std::to_string(demo.pid());
  Process burn({cli_path(), "exec", pid, "burn", "4000"}, {});
  ASSERT_TRUE(wait_until([&] { return periscope({"exec", pid, "threads"}).out.find("periscope") != std::string::npos; }));
  auto metrics = http_request(demo.admin(), "GET", "/metrics", 2s);
  EXPECT_EQ(metrics.status, 200) << "served while burn runs";
  auto info = periscope({"exec", pid, "info"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  const auto burn_exit = burn.wait(3s);
  ASSERT_TRUE(burn_exit) << "answered at its timeout, not after 4 s";
  EXPECT_EQ(*burn_exit, 1);
  EXPECT_NE(burn.stderr_text().find("burn: did not answer within 500 ms"), std::string::npos) << burn.stderr_text();
  auto over_http = http_request(demo.admin(), "POST", "/debug/cmd/burn?arg=2000", 5s);
  EXPECT_EQ(over_http.status, 400);
  EXPECT_NE(over_http.body.find("did not answer within 500 ms"), std::string::npos) << over_http.body;
  auto quick = periscope({"exec", pid, "burn", "5"});
  EXPECT_EQ(quick.exit_code, 0) << quick.err;
  EXPECT_NE(quick.out.find("primes: "), std::string::npos) << quick.out;
}

TEST(Http, PsShowsTheEndpointAndWritesPrometheusServiceDiscovery) {
  SocketDir dir;
  DemoWithHttp demo(dir);
  AgentTarget without_http(dir);
  Env env = dir.env();
  auto ps = periscope({"ps"}, env);
  EXPECT_NE(ps.out.find(demo.admin()), std::string::npos) << ps.out;
  const std::string file = dir.path() + "/targets.json";
  auto sd = periscope({"ps", "--prometheus-sd", "-o", file}, env);
  ASSERT_EQ(sd.exit_code, 0) << sd.err;
  std::ifstream in(file);
  auto groups = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(groups.is_array()) << groups.dump();
  // Every agent on the machine is listed (ps reads /proc/net/unix); ours once, the other not at all.
  int ours = 0;
  for (const auto& g : groups) {
    if (g["targets"][0] != demo.admin()) continue;
    ++ours;
    EXPECT_EQ(g["labels"]["process"], "demo_server");
    EXPECT_EQ(g["labels"]["job"], "periscope");
  }
  EXPECT_EQ(ours, 1) << groups.dump();
  // An agent without HTTP is no target. (Other tests' agents, running at the same time, may be:
  // the name "host_target" alone proves nothing.)
  for (const auto& g : groups) EXPECT_FALSE(g["targets"][0].get<std::string>().empty()) << groups.dump();
  bool listed_without_http = false;
  for (const auto& row : nlohmann::json::parse(periscope({"ps", "--json"}, env).out)) {
    if (row["pid"] != without_http.pid()) continue;
    listed_without_http = true;
    EXPECT_TRUE(row["http"].is_null()) << row.dump();
  }
  EXPECT_TRUE(listed_without_http) << "ps lists it, with no endpoint";
  EXPECT_EQ(periscope({"ps", "-o", file}, env).exit_code, 2);
}

TEST(Http, MetricsCommandIsReadableWithoutHttp) {
  SocketDir dir;
  Process demo({target_path("demo_server"), "--port", "0", "--threads", "2"}, dir.env());
  ASSERT_TRUE(demo.read_line());
  const std::string pid = std::to_string(demo.pid());
  auto all = periscope({"metrics", pid});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("process_resident_memory_bytes"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find(" MiB)"), std::string::npos) << all.out;
  EXPECT_TRUE(std::regex_search(all.out, std::regex(R"(periscope_request_duration_seconds\{name="/fast"\} +histogram +count 0)")))
      << all.out;
  auto filtered = periscope({"metrics", pid, "process_threads"});
  EXPECT_EQ(filtered.out.find("process_cpu"), std::string::npos) << filtered.out;
  EXPECT_NE(filtered.out.find("process_threads"), std::string::npos) << filtered.out;
  auto raw = periscope({"metrics", "--raw", pid});
  EXPECT_NE(raw.out.find("# TYPE process_cpu_seconds_total counter"), std::string::npos) << raw.out;
  auto info = periscope({"exec", pid, "info"});
  EXPECT_NE(info.out.find("http "), std::string::npos);
  EXPECT_NE(info.out.find(" off"), std::string::npos) << info.out;
}

TEST(Http, BadAddressLeavesTheRestOfTheAgentWorking) {
  SocketDir dir;
  AgentTarget target(dir, {{"PERISCOPE_HTTP", "example.com:80"}});
  auto info = periscope({"exec", std::to_string(target.pid()), "info"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(target.process().stderr_text().find("HTTP endpoint is off: PERISCOPE_HTTP='example.com:80'"),
            std::string::npos)
      << target.process().stderr_text();
}

TEST(Http, PrometheusServerScrapesTheDemo) {
  if (!file_exists("/usr/bin/prometheus")) GTEST_SKIP() << "needs the prometheus package (setup-deps)";
  SocketDir dir;
  DemoWithHttp demo(dir);
  const std::string config = dir.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n"
                           "scrape_configs:\n  - job_name: periscope\n    file_sd_configs:\n"
                           "      - files: ['" << dir.path() << "/targets.json']\n        refresh_interval: 1s\n";
  ASSERT_EQ(periscope({"ps", "--prometheus-sd", "-o", dir.path() + "/targets.json"}, dir.env()).exit_code, 0);
  const std::string web = "127.0.0.1:" + std::to_string(free_tcp_port());
  Process prometheus({"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir.path() + "/tsdb",
                      "--web.listen-address=" + web},
                     {});
  std::string last;
  bool found = wait_until(
      [&] {
        auto r = http_request(web, "GET", "/api/v1/query?query=process_cpu_seconds_total%7Bjob%3D%22periscope%22%7D");
        last = r.body;
        auto data = nlohmann::json::parse(r.body, nullptr, false);
        return r.status == 200 && !data.is_discarded() && !data["data"]["result"].empty() &&
               data["data"]["result"][0]["metric"]["instance"] == demo.admin();
      },
      60s);
  EXPECT_TRUE(found) << "last answer: " << last << "\nprometheus stderr: " << prometheus.stderr_text();
  auto up = http_request(web, "GET", "/api/v1/query?query=demo_responses_total");
  EXPECT_EQ(up.status, 200);
  prometheus.kill(SIGTERM);
  prometheus.wait(20s);
}

}  // namespace
}  // namespace periscope::test

namespace periscope::test {
namespace {

// The pid that answers on a fixed HTTP port, from /debug/cmd/info; 0 when nobody answers.
pid_t pid_on_port(const std::string& address) {
  auto r = http_request(address, "GET", "/debug/cmd/info", 2s);
  std::smatch m;
  if (r.status != 200 || !std::regex_search(r.body, m, std::regex("pid +([0-9]+)"))) return 0;
  return static_cast<pid_t>(std::stoi(m[1]));
}

TEST(HttpFork, AFixedPortStaysWithTheParentWhileItLivesThenPassesToTheChild) {
  SocketDir dir;
  const std::string address = "127.0.0.1:" + std::to_string(free_tcp_port());
  Env env = dir.env();
  env["LD_PRELOAD"] = agent_preload();
  env["PERISCOPE_HTTP"] = address;
  Process parent({target_path("host_target")}, env);
  ASSERT_TRUE(parent.read_line().value_or("").rfind("ready", 0) == 0);
  ASSERT_TRUE(wait_until([&] { return pid_on_port(address) == parent.pid(); })) << parent.stderr_text();
  // A pre-forked worker: it has an agent of its own, but the port is the parent's.
  parent.write_stdin("fork\n");
  auto child_line = parent.read_line().value_or("");
  ASSERT_EQ(child_line.rfind("child ", 0), 0u) << child_line;
  const pid_t child = std::stoi(child_line.substr(6));
  ASSERT_TRUE(wait_until([&] { return file_exists(dir.socket_for(child)); })) << "the child has its own agent";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pid_on_port(address), parent.pid()) << "a worker took the master's port";
  // The launcher exits (a daemon's first process): the child that lives on takes the port over.
  parent.write_stdin("exit\n");
  ASSERT_TRUE(parent.wait().has_value());
  EXPECT_TRUE(wait_until([&] { return pid_on_port(address) == child; }, 5s)) << parent.stderr_text();
  ::kill(child, SIGTERM);
}

}  // namespace
}  // namespace periscope::test
