// Who may use the HTTP admin endpoint, and which requests a web page may have made a browser send.
// The manhole's rule holds here too: everything but /metrics is served only to the process's own
// uid or root (a loopback peer, identified by the kernel) or to a client with the bearer token.
// Against web pages: a Host that is not this endpoint's (DNS rebinding) and cross-site requests
// (Origin, Sec-Fetch-Site) are refused on every path.
//
// Pure: unit-tested and fuzzed with the router.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "agent/src/http/http_peer.h"
#include "agent/src/http/http_router.h"

namespace periscope::agent {

struct HttpGuardConfig {
  uid_t owner = 0;                  // the process's uid
  std::string token;                // what "Authorization: Bearer ..." must carry; empty: no token works
  std::string token_file;           // where it is, for the refusal's words
  std::vector<std::string> hosts;   // names allowed in Host besides IP literals, localhost and this machine's
};

// The refusal (401, 403, 421) for `request` from `peer`, or nullopt when it may be served.
std::optional<HttpResponse> refuse(const HttpRequest& request, const HttpGuardConfig& config);

}  // namespace periscope::agent
