// Profiles by request: every CPU sample taken while a thread serves a periscope::Request carries
// the request's name — a pprof label `request`, a root frame with --by-request, a menu in the
// flame graph. request_target's "mixed" serves checkout, search (with a nested rank) and spins
// outside any request on one thread, so a sample under the wrong request would show.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/e2e/harness.h"
#include "tests/e2e/request_host.h"

namespace periscope::test {
namespace {

// Records `host` at 999 Hz to `out` while it serves "mixed" for `ms`, then a request that
// migrates to another thread (detach/attach) and spins there in spin_after_migration.
void record_mixed(RequestHost& host, const std::string& out, std::vector<std::string> extra = {}, int ms = 1500) {
  std::vector<std::string> argv{cli_path(), "record", host.pid(), "--rate", "999", "-o", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Process rec(argv, {});
  ASSERT_TRUE(wait_until([&] { return profile_running(host.pid()); }, 30s)) << rec.stderr_text();
  host.run("mixed " + std::to_string(ms), "mixed");
  host.run("migrate 300", "migrating");
  rec.kill(SIGINT);
  ASSERT_EQ(rec.wait(30s), 0) << rec.stderr_text();
}

// Samples per (root frame, function) over the lines of a folded file that hold the function.
using Tally = std::map<std::string, std::map<std::string, uint64_t>>;
Tally by_root(const std::string& folded, const std::vector<std::string>& functions) {
  Tally out;
  std::istringstream in(folded);
  for (std::string line; std::getline(in, line);) {
    const std::string root = line.substr(0, line.find(';'));
    const uint64_t count = std::stoull(line.substr(line.rfind(' ') + 1));
    for (const auto& f : functions) {
      if (line.find(f) != std::string::npos) out[root][f] += count;
    }
  }
  return out;
}

const std::vector<std::string> kFunctions{"burn_in_checkout", "burn_in_search", "burn_in_rank",
                                          "burn_outside_requests", "spin_after_migration"};
const std::map<std::string, std::string> kRootOf{{"burn_in_checkout", "[request checkout]"},
                                                 {"burn_in_search", "[request search]"},
                                                 {"burn_in_rank", "[request rank]"},
                                                 {"burn_outside_requests", "[no request]"},
                                                 {"spin_after_migration", "[request migrating]"}};

// Every sample of each function sits under its own request, and each has some.
void expect_each_function_under_its_request(const Tally& tally, const std::string& folded) {
  for (const auto& f : kFunctions) {
    uint64_t own = 0, elsewhere = 0;
    for (const auto& [root, counts] : tally) {
      auto it = counts.find(f);
      if (it == counts.end()) continue;
      (root == kRootOf.at(f) ? own : elsewhere) += it->second;
    }
    EXPECT_GT(own, 10u) << f << " under " << kRootOf.at(f) << ":\n" << folded;
    EXPECT_EQ(elsewhere, 0u) << f << " sampled under another request:\n" << folded;
  }
}

TEST(RequestProfile, EverySampleIsUnderTheRequestItsThreadWasServing) {
  SocketDir dir;
  RequestHost host(dir);
  const std::string out = dir.path() + "/by-request.folded";
  record_mixed(host, out, {"--by-request"}, 5000);
  const std::string folded = slurp(out);
  const Tally tally = by_root(folded, kFunctions);
  expect_each_function_under_its_request(tally, folded);
  // The mixer's time splits 3:2:1:1 between checkout, search (without its nested rank), rank and
  // no request; so do the samples under each root (3 ms in 7: 42.9%).
  const std::map<std::string, double> expected{{"burn_in_checkout", 300.0 / 7},
                                               {"burn_in_search", 200.0 / 7},
                                               {"burn_in_rank", 100.0 / 7},
                                               {"burn_outside_requests", 100.0 / 7}};
  double mixed = 0;
  for (const auto& [f, share] : expected) mixed += static_cast<double>(tally.at(kRootOf.at(f)).at(f));
  for (const auto& [f, share] : expected) {
    const double got = 100.0 * static_cast<double>(tally.at(kRootOf.at(f)).at(f)) / mixed;
    EXPECT_NEAR(got, share, 3) << kRootOf.at(f) << " of " << mixed << " samples:\n" << folded;
  }
}

TEST(RequestProfile, PprofLabelsTheRequestForGoToolPprofAndViewReadsItBack) {
  SocketDir dir;
  RequestHost host(dir);
  const std::string pb = dir.path() + "/cpu.pb.gz";
  record_mixed(host, pb);
  // periscope view reads the label back: the same request roots as a recording with --by-request.
  const std::string folded_path = dir.path() + "/converted.folded";
  auto view = periscope({"view", pb, "--by-request", "-o", folded_path});
  ASSERT_EQ(view.exit_code, 0) << view.err;
  const std::string folded = slurp(folded_path);
  expect_each_function_under_its_request(by_root(folded, kFunctions), folded);
  if (!file_exists("/usr/bin/go")) GTEST_SKIP() << "go tool pprof needs golang-go (scripts/setup-deps.sh installs it)";
  auto focus = run({"/usr/bin/go", "tool", "pprof", "-top", "-tagfocus", "request=search", pb}, {{"HOME", dir.path()}},
                   "", static_cast<uid_t>(-1), 120s);
  ASSERT_EQ(focus.exit_code, 0) << focus.out << focus.err;
  EXPECT_NE(focus.out.find("burn_in_search"), std::string::npos) << focus.out;
  EXPECT_EQ(focus.out.find("burn_in_checkout"), std::string::npos) << focus.out;
  EXPECT_EQ(focus.out.find("burn_in_rank"), std::string::npos) << "a nested request is its own:\n" << focus.out;
  auto tags = run({"/usr/bin/go", "tool", "pprof", "-tags", pb}, {{"HOME", dir.path()}}, "", static_cast<uid_t>(-1), 120s);
  for (const char* name : {"checkout", "search", "rank", "migrating"}) {
    EXPECT_NE(tags.out.find(name), std::string::npos) << name << " is a request label:\n" << tags.out;
  }
}

// The flame graph's drawn frames in a page's DOM (the chart, not the profile data in the script),
// or empty when the page has no chart.
std::string drawn_chart(const std::string& dom) {
  const auto at = dom.find("<div id=\"chart\"");
  return at == std::string::npos ? std::string() : dom.substr(at, dom.find("<div id=\"tip\"", at) - at);
}

TEST(RequestProfile, TheFlameGraphShowsOneRequestAtATime) {
  if (!file_exists("/usr/bin/chromium")) GTEST_SKIP() << "needs Debian's chromium (scripts/setup-deps.sh installs it)";
  SocketDir dir;
  RequestHost host(dir);
  const std::string html = dir.path() + "/cpu.html";
  record_mixed(host, html);
  // The page opened on the view of request checkout (from the URL, as a user's link would).
  auto dom = headless_dom("file://" + html + "#request=checkout", dir.path());
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("<option value=\"search\">search</option>"), std::string::npos) << "a per-request view is offered";
  const std::string chart = drawn_chart(dom.out);
  ASSERT_FALSE(chart.empty()) << dom.out.substr(0, 2000);
  EXPECT_NE(chart.find("burn_in_checkout"), std::string::npos) << chart.substr(0, 2000);
  EXPECT_EQ(chart.find("burn_in_search"), std::string::npos) << "another request's frames are not drawn";
  EXPECT_EQ(chart.find("burn_outside_requests"), std::string::npos) << "nor frames outside any request";
  // And the view of samples outside any request (a newline in the URL: no request has that name).
  auto outside = headless_dom("file://" + html + "#request=%0A", dir.path());
  ASSERT_EQ(outside.exit_code, 0) << outside.err;
  const std::string none = drawn_chart(outside.out);
  ASSERT_FALSE(none.empty()) << outside.out.substr(0, 2000);
  EXPECT_NE(none.find("burn_outside_requests"), std::string::npos) << none.substr(0, 2000);
  EXPECT_EQ(none.find("burn_in_checkout"), std::string::npos) << "a request's frames are not drawn";
}

// `top --request NAME`: the live view of one request's samples.
TEST(RequestProfile, TopShowsOneRequestsFunctions) {
  SocketDir dir;
  RequestHost host(dir);
  host.process.write_stdin("mixed 4000\n");  // answered when done, read below
  auto top = periscope({"top", host.pid(), "--rate", "999", "-n", "2", "--request", "search"});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  const std::string last = top.out.substr(top.out.rfind("pid "));
  EXPECT_NE(last.find("request search: "), std::string::npos) << last;
  EXPECT_NE(last.find("burn_in_search"), std::string::npos) << last;
  EXPECT_EQ(last.find("burn_in_checkout"), std::string::npos) << "another request's function:\n" << last;
  EXPECT_EQ(last.find("burn_outside_requests"), std::string::npos) << last;
  auto outside = periscope({"top", host.pid(), "--rate", "999", "-n", "1", "--request", "-"});
  ASSERT_EQ(outside.exit_code, 0) << outside.err;
  EXPECT_NE(outside.out.find("outside any request: "), std::string::npos) << outside.out;
  EXPECT_EQ(outside.out.find("burn_in_search"), std::string::npos) << outside.out;
  EXPECT_EQ(host.process.read_line(30s).value_or("EOF"), "done mixed");
}

// A slow request's report says where the samples taken on it while it was slow were.
TEST(RequestProfile, ASlowRequestsReportTablesTheFunctionsItsSamplesWereIn) {
  SocketDir dir;
  RequestHost host(dir);  // slow after 100 ms
  Process rec({cli_path(), "record", host.pid(), "--rate", "999", "-o", dir.path() + "/cpu.folded"}, {});
  ASSERT_TRUE(wait_until([&] { return profile_running(host.pid()); }, 30s)) << rec.stderr_text();
  host.run("slow checkout 1500 42", "checkout");
  host.run("mixed 300", "mixed");  // other requests, other functions, after it: none of them in its table
  rec.kill(SIGINT);
  ASSERT_EQ(rec.wait(30s), 0) << rec.stderr_text();
  const nlohmann::json report = host.finished_report("checkout");
  ASSERT_FALSE(report.is_null());
  // 1.4 s slow at 999 Hz: some 1,400 samples, all under burn_in_checkout and most in its own code
  // (the rest in the clock_gettime it calls, and in a debug build in chrono's uninlined helpers).
  EXPECT_GT(report["samples"].get<uint64_t>(), 500u) << report.dump(2);
  ASSERT_FALSE(report["top"].empty()) << report.dump(2);
  EXPECT_NE(report["top"][0]["function"].get<std::string>().find("burn_in_checkout"), std::string::npos) << report.dump(2);
  EXPECT_GT(report["top"][0]["total"].get<uint64_t>() * 10, report["samples"].get<uint64_t>() * 9) << report.dump(2);
  EXPECT_GT(report["top"][0]["code"].get<uint64_t>() * 2, report["samples"].get<uint64_t>()) << report.dump(2);
  for (const auto& f : report["top"]) {
    EXPECT_EQ(f["function"].get<std::string>().find("burn_in_search"), std::string::npos) << report.dump(2);
  }
  auto text = periscope({"slow", host.pid()});
  EXPECT_NE(text.out.find("samples while slow (a profile ran), where they were:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("burn_in_checkout"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace periscope::test
