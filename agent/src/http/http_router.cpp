#include "agent/src/http/http_router.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "agent/src/http/http_guard.h"
#include "agent/src/http/url_query.h"
#include "protocol/protocol.h"
#include "profiler/sampling_rate.h"

namespace periscope::agent {

namespace {

constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

std::string allowed_list(std::initializer_list<std::string_view> names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out.empty() ? "none" : out;
}

// Empty when every query parameter is one `names` allows; else the 400 body.
std::string check_params(const UrlTarget& target, std::initializer_list<std::string_view> names) {
  for (const auto& [key, value] : target.query) {
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      return "unknown query parameter '" + key + "' (" + target.path + " takes: " + allowed_list(names) + ")\n";
    }
  }
  return {};
}

std::optional<long> parse_number(const std::string& text, long min, long max) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  long v = std::strtol(text.c_str(), nullptr, 10);
  if (v < min || v > max) return std::nullopt;
  return v;
}

HttpResponse method_not_allowed(const std::string& allow) {
  HttpResponse r = text_response(405, "method not allowed; use " + allow + "\n");
  r.headers.emplace_back("Allow", allow);
  return r;
}

const char* kIndexHtml = R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>periscope</title></head><body>
<h1>periscope</h1>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics (text format 0.0.4)</li>
<li><a href="/debug/pprof/profile?seconds=30">/debug/pprof/profile?seconds=30</a>: CPU profile, gzipped pprof
 (<code>&amp;mode=wall</code> for wall-clock, <code>&amp;rate=HZ</code>); <code>go tool pprof http://HOST:PORT/debug/pprof/profile</code></li>
<li><a href="/debug/pprof/heap">/debug/pprof/heap</a>, <a href="/debug/pprof/allocs">/debug/pprof/allocs</a>: sampled heap
 profile, gzipped pprof (in use first, or allocated first; <code>?seconds=N</code> for what changed in N seconds); needs heap
 profiling on (<code>PERISCOPE_HEAP=on</code> or <code>periscope heap PID --start</code>)</li>
<li><a href="/debug/stacks">/debug/stacks</a>: every thread's stack (<code>?tid=N</code>, <code>?format=json</code>)</li>
<li><a href="/debug/slow">/debug/slow</a>: slow-request reports (<code>?since=N</code>, <code>?format=json</code>)</li>
<li><a href="/debug/inflight">/debug/inflight</a>: requests running now (<code>?limit=N</code>, <code>?format=json</code>)</li>
<li><a href="/debug/cmd/">/debug/cmd/</a>: every manhole command (<code>/debug/cmd/NAME?arg=A&amp;arg=B</code>;
 commands that change state by POST only)</li>
</ul></body></html>
)";

// `quit` ends a manhole session; over HTTP it would mean nothing.
bool served_over_http(const std::string& command) { return command != "quit"; }

class Route {
 public:
  Route(const manhole::CommandRegistry& commands, const HttpBackend& backend, const HttpRequest& request,
        const UrlTarget& target, Respond& respond)
      : commands_(commands), backend_(backend), request_(request), target_(target), respond_(respond) {}

  void dispatch() {
    const std::string& path = target_.path;
    if (path == "/" || path == "/debug/pprof/" || path == "/debug/pprof") return index();
    if (path == "/metrics") return metrics();
    if (path == "/debug/pprof/profile") return profile();
    if (path == "/debug/pprof/heap") return heap(false);
    if (path == "/debug/pprof/allocs") return heap(true);
    if (path == "/debug/stacks") return command_route("stacks", "tid", 1, 1 << 22);
    if (path == "/debug/slow") return command_route("slow", "since", 0, 1L << 30);
    if (path == "/debug/inflight") return command_route("inflight", "limit", 1, 1L << 30);
    if (path == "/debug/cmd" || path == "/debug/cmd/") return command_list();
    if (path.rfind("/debug/cmd/", 0) == 0) return command(path.substr(11));
    respond_(text_response(404, "no such page: " + path + " (see / for what there is)\n"));
  }

 private:
  bool get_only() {
    if (request_.method == "GET") return true;
    respond_(method_not_allowed("GET"));
    return false;
  }

  bool params_ok(std::initializer_list<std::string_view> names) {
    std::string bad = check_params(target_, names);
    if (bad.empty()) return true;
    respond_(text_response(400, bad));
    return false;
  }

  std::optional<bool> wants_json() {
    auto format = target_.get("format");
    if (!format || *format == "text") return false;
    if (*format == "json") return true;
    respond_(text_response(400, "format must be text or json, not '" + *format + "'\n"));
    return std::nullopt;
  }

  void index() {
    if (!get_only() || !params_ok({})) return;
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = kIndexHtml;
    respond_(std::move(r));
  }

  void metrics() {
    if (!get_only() || !params_ok({})) return;
    HttpResponse r;
    r.content_type = kMetricsType;
    r.body = backend_.metrics_text();
    respond_(std::move(r));
  }

  void profile() {
    if (!get_only() || !params_ok({"seconds", "mode", "rate"})) return;
    ProfileRequest p;
    if (auto s = target_.get("seconds")) {
      auto v = parse_number(*s, 1, kMaxProfileSeconds);
      if (!v) return respond_(text_response(400, "seconds must be 1.." + std::to_string(kMaxProfileSeconds) + "\n"));
      p.duration = std::chrono::seconds(*v);
    }
    if (auto m = target_.get("mode")) {
      if (*m != "cpu" && *m != "wall") return respond_(text_response(400, "mode must be cpu or wall\n"));
      p.wall = *m == "wall";
    }
    if (auto r = target_.get("rate")) {
      auto v = parse_number(*r, kMinSamplingHz, kMaxSamplingHz);
      if (!v) return respond_(text_response(400, "rate must be " + sampling_hz_range() + " (Hz)\n"));
      p.hz = static_cast<int>(*v);
    }
    p.on_abandoned = request_.on_abandoned;
    backend_.profile(p, std::move(respond_));
  }

  void heap(bool allocs) {
    if (!get_only() || !params_ok({"seconds"})) return;
    HeapRequest h;
    h.allocs = allocs;
    if (auto s = target_.get("seconds")) {
      auto v = parse_number(*s, 1, kMaxProfileSeconds);
      if (!v) return respond_(text_response(400, "seconds must be 1.." + std::to_string(kMaxProfileSeconds) + "\n"));
      h.delta = std::chrono::seconds(*v);
    }
    h.on_abandoned = request_.on_abandoned;
    if (!backend_.heap) return respond_(text_response(404, "no heap profiles here\n"));
    backend_.heap(h, std::move(respond_));
  }

  // A fixed command whose optional arguments come from one repeatable numeric parameter.
  void command_route(const std::string& name, const std::string& param, long min, long max) {
    if (!get_only() || !params_ok({param, "format"})) return;
    auto json = wants_json();
    if (!json) return;
    std::vector<std::string> words{name};
    for (const auto& value : target_.all(param)) {
      if (!parse_number(value, min, max)) {
        return respond_(text_response(400, param + " must be a number from " + std::to_string(min) + "\n"));
      }
      words.push_back(value);
    }
    run(words, *json);
  }

  void command_list() {
    if (!get_only() || !params_ok({"format"})) return;
    auto json = wants_json();
    if (!json) return;
    nlohmann::json list = nlohmann::json::array();
    std::string text;
    for (const auto& c : commands_.list()) {
      if (!served_over_http(c.name)) continue;
      const char* method = c.changes_state ? "POST" : "GET";
      list.push_back({{"name", c.name}, {"usage", c.usage}, {"help", c.help}, {"method", method}});
      text += std::string(method) + (c.changes_state ? " " : "  ") + "/debug/cmd/" + c.name + "  " + c.usage +
              "  - " + c.help + "\n";
    }
    respond_(*json ? json_response(list) : text_response(200, std::move(text)));
  }

  void command(const std::string& name) {
    auto summaries = commands_.list();
    auto it = std::find_if(summaries.begin(), summaries.end(), [&](const auto& c) { return c.name == name; });
    if (it == summaries.end() || !served_over_http(name)) {
      return respond_(text_response(404, "no such command: " + name + " (see /debug/cmd/)\n"));
    }
    if (it->changes_state && request_.method != "POST") return respond_(method_not_allowed("POST"));
    if (!it->changes_state && request_.method != "GET" && request_.method != "POST") {
      return respond_(method_not_allowed("GET, POST"));
    }
    if (!params_ok({"arg", "format"})) return;
    auto json = wants_json();
    if (!json) return;
    std::vector<std::string> words{name};
    for (auto& arg : target_.all("arg")) words.push_back(std::move(arg));
    run(words, *json);
  }

  void run(const std::vector<std::string>& words, bool json) {
    if (!backend_.run_command) return answer(commands_.run(words), json, respond_);
    backend_.run_command(words, [json, respond = respond_](protocol::Reply reply) {
      answer(std::move(reply), json, respond);
    });
  }

  static void answer(protocol::Reply reply, bool json, const Respond& respond) {
    if (!reply.ok) {
      if (json) {
        HttpResponse r = json_response({{"error", reply.error}});
        r.status = 400;
        return respond(std::move(r));
      }
      return respond(text_response(400, "error: " + reply.error + "\n"));
    }
    respond(json ? json_response(reply.data) : text_response(200, protocol::render_text(reply)));
  }

  static HttpResponse json_response(const nlohmann::json& data) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = protocol::dump_json(data) + "\n";
    return r;
  }

  const manhole::CommandRegistry& commands_;
  const HttpBackend& backend_;
  const HttpRequest& request_;
  const UrlTarget& target_;
  Respond& respond_;
};

}  // namespace

HttpResponse text_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpRouter::HttpRouter(const manhole::CommandRegistry& commands, HttpBackend backend, const HttpGuardConfig& guard)
    : commands_(commands), backend_(std::move(backend)), guard_(std::make_unique<HttpGuardConfig>(guard)) {}
HttpRouter::HttpRouter(HttpRouter&&) noexcept = default;
HttpRouter::~HttpRouter() = default;

void HttpRouter::handle(const HttpRequest& request, Respond respond) const {
  if (auto refused = refuse(request, *guard_)) return respond(std::move(*refused));
  std::string error;
  UrlTarget target = parse_url_target(request.target, &error);
  if (!error.empty()) return respond(text_response(400, "bad request: " + error + "\n"));
  Route(commands_, backend_, request, target, respond).dispatch();
}

}  // namespace periscope::agent
