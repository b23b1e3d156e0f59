#include "agent/src/http/http_address.h"

#include <arpa/inet.h>
#include <cstdlib>

namespace periscope::agent {

namespace {

std::optional<uint16_t> parse_port(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  long port = std::strtol(text.c_str(), nullptr, 10);
  if (port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

std::optional<HttpAddress> parse_http_address(const std::string& spec, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<HttpAddress> {
    *error = "'" + spec + "': " + why + " (expected PORT, HOST:PORT or [IPV6]:PORT)";
    return std::nullopt;
  };
  HttpAddress address;
  std::string host, port;
  if (!spec.empty() && spec[0] == '[') {
    auto close = spec.find("]:");
    if (close == std::string::npos) return fail("an IPv6 address needs a port after ']:'");
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else if (auto colon = spec.rfind(':'); colon != std::string::npos) {
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
    if (host.find(':') != std::string::npos) return fail("write an IPv6 address in brackets");
  } else {
    port = spec;
  }
  auto number = parse_port(port);
  if (!number) return fail("the port must be a number from 0 to 65535");
  address.port = *number;
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  unsigned char buf[16];
  if (::inet_pton(AF_INET, host.c_str(), buf) == 1) {
    address.ip = host;
  } else if (::inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    address.ip = host;
    address.v6 = true;
  } else {
    return fail("the host must be an IP address or localhost");
  }
  return address;
}

std::string format_http_address(const HttpAddress& address) {
  std::string host = address.v6 ? "[" + address.ip + "]" : address.ip;
  return host + ":" + std::to_string(address.port);
}

}  // namespace periscope::agent
