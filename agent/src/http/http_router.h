// What the HTTP admin endpoint answers, independent of sockets (so it can be unit-tested and
// fuzzed): /metrics, /debug/pprof/profile|heap|allocs, /debug/stacks|slow|inflight and every manhole command
// as /debug/cmd/NAME (GET for read-only commands, POST for those that change state).
//
// Threading: handle() on the io thread; `respond` is called exactly once, at once or later (a
// profile answers after its seconds), also on the io thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/src/http/http_peer.h"
#include "manhole/command_registry.h"
#include "profiler/sampling_rate.h"

namespace periscope::agent {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/debug/slow?format=json"
  // The headers the guard (http_guard.h) reads; empty when absent.
  std::string host;
  std::string origin;
  std::string sec_fetch_site;
  std::string authorization;
  HttpPeer peer;
  // For a handler whose answer takes time (a profile): it sets what to undo if the client goes
  // away before the answer; the server runs it then. Null when nobody watches.
  std::shared_ptr<std::function<void()>> on_abandoned;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra: Allow, Content-Disposition
};
using Respond = std::function<void(HttpResponse)>;

struct ProfileRequest {
  std::chrono::seconds duration{30};
  bool wall = false;
  int hz = kDefaultSamplingHz;
  std::shared_ptr<std::function<void()>> on_abandoned;  // the request's (HttpRequest)
};

struct HeapRequest {
  bool allocs = false;           // /debug/pprof/allocs: pprof shows alloc_space first
  std::chrono::seconds delta{0};  // ?seconds=N: the change over N seconds; 0: the profile as it is
  std::shared_ptr<std::function<void()>> on_abandoned;
};

struct HttpBackend {
  std::function<std::string()> metrics_text;  // Prometheus text format 0.0.4
  // Profiles for the duration, then responds with the gzipped pprof (or the reason it could not).
  std::function<void(const ProfileRequest&, Respond)> profile;
  // Runs a command and hands its reply on (manhole/command_runner.h); null: at once, here.
  std::function<void(const std::vector<std::string>&, std::function<void(protocol::Reply)>)> run_command;
  // The sampled heap profile, gzipped pprof (or why there is none); null: 404.
  std::function<void(const HeapRequest&, Respond)> heap;
};

struct HttpGuardConfig;

class HttpRouter {
 public:
  // Every request passes `guard` (http_guard.h) before it is routed.
  HttpRouter(const manhole::CommandRegistry& commands, HttpBackend backend, const HttpGuardConfig& guard);
  HttpRouter(HttpRouter&&) noexcept;
  ~HttpRouter();
  void handle(const HttpRequest& request, Respond respond) const;

 private:
  const manhole::CommandRegistry& commands_;
  HttpBackend backend_;
  std::unique_ptr<HttpGuardConfig> guard_;
};

HttpResponse text_response(int status, std::string body);

}  // namespace periscope::agent
