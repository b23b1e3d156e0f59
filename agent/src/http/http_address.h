// Where the HTTP admin endpoint listens: PERISCOPE_HTTP as "PORT", ":PORT", "HOST:PORT" or
// "[IPV6]:PORT". Without a host it is loopback (127.0.0.1); any other interface must be named.
// HOST is an IP literal or "localhost" (no name lookups inside someone else's process).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace periscope::agent {

struct HttpAddress {
  std::string ip;  // numeric, v4 or v6 (without brackets)
  uint16_t port = 0;  // 0: any free port
  bool v6 = false;
};

std::optional<HttpAddress> parse_http_address(const std::string& spec, std::string* error);
// "127.0.0.1:9464" or "[::1]:9464", as a browser or Prometheus wants it.
std::string format_http_address(const HttpAddress& address);

}  // namespace periscope::agent
