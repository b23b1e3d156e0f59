// The HTTP admin endpoint's pure parts: listen addresses, request targets and the router's
// answers (status codes, methods, parameters), without sockets.
#include <gtest/gtest.h>

#include "agent/src/http/http_address.h"
#include "agent/src/http/http_guard.h"
#include "agent/src/http/http_router.h"
#include "agent/src/http/url_query.h"

namespace periscope::agent {
namespace {

TEST(HttpAddress, DefaultsToLoopbackAndNeedsAnExplicitHostForOthers) {
  std::string error;
  auto a = parse_http_address("9464", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(format_http_address(*a), "127.0.0.1:9464");
  EXPECT_EQ(format_http_address(*parse_http_address(":0", &error)), "127.0.0.1:0");
  EXPECT_EQ(format_http_address(*parse_http_address("localhost:80", &error)), "127.0.0.1:80");
  EXPECT_EQ(format_http_address(*parse_http_address("0.0.0.0:9464", &error)), "0.0.0.0:9464");
  auto v6 = parse_http_address("[::1]:9464", &error);
  ASSERT_TRUE(v6) << error;
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(format_http_address(*v6), "[::1]:9464");
}

TEST(HttpAddress, RejectsWhatItCannotUseWithTheReason) {
  std::string error;
  EXPECT_FALSE(parse_http_address("65536", &error));
  EXPECT_NE(error.find("0 to 65535"), std::string::npos) << error;
  EXPECT_FALSE(parse_http_address("example.com:80", &error));
  EXPECT_NE(error.find("IP address or localhost"), std::string::npos) << error;
  EXPECT_FALSE(parse_http_address("::1:80", &error));
  EXPECT_NE(error.find("brackets"), std::string::npos) << error;
  EXPECT_FALSE(parse_http_address("", &error));
  EXPECT_FALSE(parse_http_address("[::1]", &error));
}

TEST(UrlTarget, DecodesPathAndRepeatedParameters) {
  std::string error;
  auto t = parse_url_target("/debug/cmd/set?arg=log%5Flevel&arg=a+b&format=json#frag", &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(t.path, "/debug/cmd/set");
  EXPECT_EQ(t.all("arg"), (std::vector<std::string>{"log_level", "a b"}));
  EXPECT_EQ(t.get("format"), "json");
  EXPECT_FALSE(t.get("missing"));
}

TEST(UrlTarget, RejectsMalformedTargets) {
  std::string error;
  parse_url_target("/x?a=%zz", &error);
  EXPECT_NE(error.find("percent"), std::string::npos);
  parse_url_target("/x?a=%4", &error);
  EXPECT_FALSE(error.empty());
  parse_url_target("/x%00y", &error);
  EXPECT_FALSE(error.empty());
  parse_url_target("http://host/x", &error);
  EXPECT_NE(error.find("start with '/'"), std::string::npos);
  parse_url_target("/" + std::string(kMaxTargetBytes, 'a'), &error);
  EXPECT_NE(error.find("longer than"), std::string::npos);
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    EXPECT_EQ(commands_.add({"echo", "[WORD...]", "say it back",
                             [](const manhole::Args& a) {
                               std::string s;
                               for (const auto& w : a) s += w + ";";
                               return protocol::Reply::success(s + "\n", {{"words", a}});
                             }}),
              "");
    manhole::Command reset{"reset", "", "changes state", [this](const manhole::Args&) {
                             ++resets_;
                             return protocol::Reply::success("reset\n");
                           }};
    reset.changes_state = true;
    EXPECT_EQ(commands_.add(reset), "");
    EXPECT_EQ(commands_.add({"slow", "[SINCE]", "reports", [](const manhole::Args& a) {
                               return protocol::Reply::success("since " + (a.empty() ? "-" : a[0]) + "\n");
                             }}),
              "");
    EXPECT_EQ(commands_.add({"fails", "", "always fails",
                             [](const manhole::Args&) { return protocol::Reply::failure("it failed"); }}),
              "");
  }

  // From the owner, over loopback (the guard's own tests are in http_guard_test.cpp).
  HttpResponse get(const std::string& target, const std::string& method = "GET") {
    HttpRequest request;
    request.method = method;
    request.target = target;
    request.host = "127.0.0.1:9464";
    request.peer = {true, kOwner};
    return send(request);
  }

  HttpResponse send(const HttpRequest& request) {
    HttpGuardConfig guard;
    guard.owner = kOwner;
    guard.token = "s3cret";
    guard.token_file = "/run/periscope/1.token";
    HttpRouter router(commands_,
                      {[] { return std::string("up 1\n"); },
                       [this](const ProfileRequest& p, Respond respond) {
                         profile_ = p;
                         respond(text_response(200, "pprof"));
                       }},
                      guard);
    HttpResponse out;
    int calls = 0;
    const std::string& target = request.target;
    router.handle(request, [&](HttpResponse r) {
      out = std::move(r);
      ++calls;
    });
    EXPECT_EQ(calls, 1) << target;
    return out;
  }

  static constexpr uid_t kOwner = 1000;
  manhole::CommandRegistry commands_;
  int resets_ = 0;
  ProfileRequest profile_;
};

TEST_F(RouterTest, ServesMetricsInTheExpositionFormat) {
  auto r = get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "up 1\n");
  EXPECT_EQ(get("/metrics", "POST").status, 405);
  EXPECT_EQ(get("/metrics?x=1").status, 400);
}

TEST_F(RouterTest, RunsCommandsWithArgumentsAndFormats) {
  auto text = get("/debug/cmd/echo?arg=a&arg=b%20c");
  EXPECT_EQ(text.status, 200);
  EXPECT_EQ(text.body, "a;b c;\n");
  auto json = get("/debug/cmd/echo?arg=a&format=json");
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(json.body, "{\"words\":[\"a\"]}\n");
  EXPECT_EQ(get("/debug/cmd/echo?format=xml").status, 400);
  auto failed = get("/debug/cmd/fails");
  EXPECT_EQ(failed.status, 400);
  EXPECT_EQ(failed.body, "error: it failed\n");
  EXPECT_EQ(get("/debug/cmd/nope").status, 404);
  EXPECT_EQ(get("/debug/cmd/echo?bogus=1").status, 400);
}

TEST_F(RouterTest, StateChangingCommandsArePostOnly) {
  auto r = get("/debug/cmd/reset");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "POST"}));
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(get("/debug/cmd/reset", "POST").status, 200);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(get("/debug/cmd/echo", "DELETE").status, 405);
  auto list = get("/debug/cmd/");
  EXPECT_NE(list.body.find("POST /debug/cmd/reset"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("GET  /debug/cmd/echo"), std::string::npos) << list.body;
}

TEST_F(RouterTest, FixedRoutesTakeOnlyTheirNumericParameter) {
  EXPECT_EQ(get("/debug/slow?since=7").body, "since 7\n");
  EXPECT_EQ(get("/debug/slow?since=-1").status, 400);
  EXPECT_EQ(get("/debug/slow?since=abc").status, 400);
  EXPECT_EQ(get("/debug/slow?limit=3").status, 400);
  EXPECT_EQ(get("/debug/slow?since=1&since=2").status, 400);  // one SINCE at most
}

TEST_F(RouterTest, ProfileParametersAreCheckedBeforeProfiling) {
  auto r = get("/debug/pprof/profile?seconds=2&mode=wall&rate=250");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(profile_.duration, std::chrono::seconds(2));
  EXPECT_TRUE(profile_.wall);
  EXPECT_EQ(profile_.hz, 250);
  EXPECT_EQ(get("/debug/pprof/profile?seconds=0").status, 400);
  EXPECT_EQ(get("/debug/pprof/profile?seconds=99999").status, 400);
  EXPECT_EQ(get("/debug/pprof/profile?mode=gpu").status, 400);
  EXPECT_EQ(get("/debug/pprof/profile?rate=0").status, 400);
  EXPECT_EQ(get("/debug/pprof/profile", "POST").status, 405);
}

TEST_F(RouterTest, IndexAndUnknownPaths) {
  auto index = get("/debug/pprof/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("/debug/pprof/profile"), std::string::npos);
  EXPECT_EQ(get("/").status, 200);
  EXPECT_EQ(get("/nope").status, 404);
  EXPECT_EQ(get("/debug/cmd/quit").status, 404);  // means nothing without a session
  EXPECT_EQ(get("/x?a=%zz").status, 400);
}


// ---- the guard (http_guard.h): who may ask, and what a web page may make a browser ask.

HttpRequest from(HttpPeer peer, const std::string& target, const std::string& method = "GET") {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.host = "127.0.0.1:9464";
  r.peer = peer;
  return r;
}

TEST_F(RouterTest, OnlyTheOwnerAndRootMayUseDebugOverLoopback) {
  EXPECT_EQ(send(from({true, kOwner}, "/debug/cmd/echo")).status, 200);
  EXPECT_EQ(send(from({true, 0}, "/debug/cmd/echo")).status, 200) << "root";
  HttpResponse other = send(from({true, 1001}, "/debug/stacks"));
  EXPECT_EQ(other.status, 401);
  EXPECT_NE(other.body.find("uid 1001 may not use /debug/stacks"), std::string::npos) << other.body;
  EXPECT_NE(other.body.find("/run/periscope/1.token"), std::string::npos) << "says where the token is";
  EXPECT_EQ(send(from({true, std::nullopt}, "/debug/slow")).status, 401) << "uid unknown: no";
  EXPECT_EQ(send(from({false, std::nullopt}, "/debug/pprof/profile?seconds=1")).status, 401) << "another host";
  EXPECT_EQ(profile_.duration.count(), 30) << "no profile was started for them";
}

TEST_F(RouterTest, MetricsAndTheIndexAreOpenToEveryClient) {
  EXPECT_EQ(send(from({true, 1001}, "/metrics")).status, 200) << "Prometheus runs as its own user";
  EXPECT_EQ(send(from({false, std::nullopt}, "/metrics")).status, 200) << "or on another host";
  EXPECT_EQ(send(from({false, std::nullopt}, "/")).status, 200);
}

TEST_F(RouterTest, TheBearerTokenAdmitsAnyClient) {
  HttpRequest r = from({false, std::nullopt}, "/debug/cmd/echo");
  r.authorization = "Bearer s3cret";
  EXPECT_EQ(send(r).status, 200);
  r.authorization = "bearer s3cret";
  EXPECT_EQ(send(r).status, 200) << "the scheme is case-insensitive";
  r.authorization = "Bearer s3cre";
  EXPECT_EQ(send(r).status, 401);
  r.authorization = "Basic s3cret";
  EXPECT_EQ(send(r).status, 401);
}

TEST_F(RouterTest, AForeignHostHeaderIsRefusedOnEveryPath) {
  for (const char* path : {"/metrics", "/debug/stacks", "/"}) {
    HttpRequest r = from({true, kOwner}, path);
    r.host = "evil.example:9464";  // DNS rebinding: the page's own name, resolving to 127.0.0.1
    HttpResponse refused = send(r);
    EXPECT_EQ(refused.status, 421) << path;
    EXPECT_NE(refused.body.find("PERISCOPE_HTTP_HOSTS"), std::string::npos) << refused.body;
  }
  for (const char* host : {"127.0.0.1:9464", "localhost:9464", "[::1]:9464", "10.1.2.3", "LOCALHOST", ""}) {
    HttpRequest r = from({true, kOwner}, "/debug/cmd/echo");
    r.host = host;
    EXPECT_EQ(send(r).status, 200) << host;
  }
  HttpRequest bad = from({true, kOwner}, "/metrics");
  bad.host = "127.0.0.1:evil";
  EXPECT_EQ(send(bad).status, 421);
}

TEST_F(RouterTest, CrossSiteRequestsAreRefusedEvenFromTheOwner) {
  HttpRequest csrf = from({true, kOwner}, "/debug/cmd/reset", "POST");  // the browser runs as the owner
  csrf.origin = "https://evil.example";
  EXPECT_EQ(send(csrf).status, 403);
  EXPECT_EQ(resets_, 0);
  HttpRequest img = from({true, kOwner}, "/debug/pprof/profile?seconds=3600");
  img.sec_fetch_site = "cross-site";  // <img src=...> on another site
  EXPECT_EQ(send(img).status, 403);
  EXPECT_EQ(profile_.duration.count(), 30) << "no hour of sampling";
  HttpRequest same_site = from({true, kOwner}, "/debug/stacks");
  same_site.sec_fetch_site = "same-site";
  EXPECT_EQ(send(same_site).status, 403);
  HttpRequest typed = from({true, kOwner}, "/debug/cmd/echo");
  typed.sec_fetch_site = "none";  // typed into the address bar
  EXPECT_EQ(send(typed).status, 200);
  HttpRequest own_page = from({true, kOwner}, "/debug/cmd/reset", "POST");
  own_page.origin = "http://127.0.0.1:9464";
  own_page.sec_fetch_site = "same-origin";
  EXPECT_EQ(send(own_page).status, 200);
  EXPECT_EQ(resets_, 1);
}

}  // namespace
}  // namespace periscope::agent
