// libFuzzer target: raw bytes from a TCP peer, through Beast's request parser with the limits
// the agent's HTTP server sets, into the HttpRouter (a registry with a read-only command, a
// state-changing one and a failing one; a profile backend that answers at once). Invariants:
// nothing throws out of the router, it answers exactly once, with a status we document.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "agent/src/http/http_guard.h"
#include "agent/src/http/http_router.h"
#include "agent/src/http/http_server.h"

namespace http = boost::beast::http;
using namespace periscope;

namespace {

manhole::CommandRegistry& commands() {
  static manhole::CommandRegistry* registry = [] {
    auto* r = new manhole::CommandRegistry;
    (void)r->add({"echo", "[WORD...]", "say it back", [](const manhole::Args& a) {
                    std::string s;
                    for (const auto& w : a) s += w + " ";
                    return protocol::Reply::success(s, {{"words", a}});
                  }});
    manhole::Command set{"set", "NAME VALUE", "changes state",
                         [](const manhole::Args&) { return protocol::Reply::success("ok\n"); }};
    set.changes_state = true;
    (void)r->add(set);
    (void)r->add({"slow", "[SINCE]", "reports", [](const manhole::Args&) { return protocol::Reply::success("x\n"); }});
    (void)r->add({"stacks", "[TID...]", "stacks", [](const manhole::Args&) { return protocol::Reply::success("s\n"); }});
    (void)r->add({"inflight", "[LIMIT]", "inflight",
                  [](const manhole::Args&) { return protocol::Reply::success("i\n"); }});
    (void)r->add({"fails", "", "fails", [](const manhole::Args&) { return protocol::Reply::failure("no"); }});
    return r;
  }();
  return *registry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::set<int> kDocumented = {200, 400, 401, 403, 404, 405, 409, 413, 421, 431, 503};
  static agent::HttpRouter router(commands(), {[] { return std::string("up 1\n"); },
                                               [](const agent::ProfileRequest& p, agent::Respond respond) {
                                                 if (p.duration.count() < 1 || p.hz < 1) std::abort();
                                                 respond(agent::text_response(200, "pprof"));
                                               }},
                                               [] {
                                                 agent::HttpGuardConfig guard;
                                                 guard.owner = 1000;
                                                 guard.token = "secret";
                                                 guard.hosts = {"admin.internal"};
                                                 return guard;
                                               }());
  http::request_parser<http::string_body> parser;
  parser.header_limit(agent::kMaxHeaderBytes);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) break;
    } else if (ec) {
      return 0;  // the server answers 400/413/431 and closes
    }
    used += n;
  }
  if (!parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  const auto& request = parser.get();
  int calls = 0;
  agent::HttpRequest r;
  r.method = std::string(request.method_string());
  r.target = std::string(request.target());
  r.host = std::string(request[http::field::host]);
  r.origin = std::string(request[http::field::origin]);
  r.sec_fetch_site = std::string(request["Sec-Fetch-Site"]);
  r.authorization = std::string(request[http::field::authorization]);
  // Who connected comes from the kernel, not the bytes; the first byte picks one of three peers.
  r.peer.loopback = size > 0 && data[0] % 3 != 0;
  if (size > 0 && data[0] % 3 == 1) r.peer.uid = 1000;
  router.handle(r,
                [&](agent::HttpResponse response) {
                  ++calls;
                  if (!kDocumented.count(response.status)) std::abort();
                });
  if (calls != 1) std::abort();
  return 0;
}
