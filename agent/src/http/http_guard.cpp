#include "agent/src/http/http_guard.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <string_view>
#include <unistd.h>

#include "agent/src/http/url_query.h"

namespace periscope::agent {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "example.com:9464" -> "example.com", "[::1]:9464" -> "::1"; empty when malformed.
std::string host_name_of(const std::string& host) {
  if (!host.empty() && host[0] == '[') {
    auto close = host.find(']');
    if (close == std::string::npos) return {};
    std::string rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.find_first_not_of("0123456789", 1) != std::string::npos)) return {};
    return host.substr(1, close - 1);
  }
  auto colon = host.find(':');
  if (colon == std::string::npos) return host;
  if (host.find_first_not_of("0123456789", colon + 1) != std::string::npos) return {};
  return host.substr(0, colon);
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

std::string machine_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? lower(name) : std::string();
}

// A page on another site can make a browser send requests here under a name it controls (DNS
// rebinding: evil.example resolving to 127.0.0.1); it cannot make the Host an IP literal of ours,
// "localhost" or this machine's name.
bool host_allowed(const std::string& host, const HttpGuardConfig& config) {
  if (host.empty()) return true;  // HTTP/1.0 without Host: no browser sends that
  const std::string name = lower(host_name_of(host));
  if (name.empty()) return false;
  if (is_ip_literal(name) || name == "localhost" || name.ends_with(".localhost") || name == machine_name()) {
    return true;
  }
  return std::any_of(config.hosts.begin(), config.hosts.end(), [&](const std::string& h) { return lower(h) == name; });
}

// Browsers say where a request comes from: Sec-Fetch-Site (all of them since 2023) and Origin (on
// every cross-origin request but a plain navigation or <img>). Only same-origin and the user's
// own typing ("none") pass.
std::string cross_site_reason(const HttpRequest& r) {
  if (!r.sec_fetch_site.empty() && r.sec_fetch_site != "same-origin" && r.sec_fetch_site != "none") {
    return "a " + r.sec_fetch_site + " request from a web page";
  }
  if (!r.origin.empty() && lower(r.origin) != "http://" + lower(r.host)) {
    return "a request from the web page of origin " + r.origin;
  }
  return {};
}

bool equal_in_constant_time(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool has_token(const HttpRequest& r, const HttpGuardConfig& config) {
  constexpr std::string_view kBearer = "bearer ";
  if (config.token.empty() || r.authorization.size() <= kBearer.size()) return false;
  if (lower(r.authorization.substr(0, kBearer.size())) != kBearer) return false;
  return equal_in_constant_time(r.authorization.substr(kBearer.size()), config.token);
}

// /metrics is for Prometheus, which runs as a user of its own, or on another host when the
// operator gave a non-loopback address; the index only names the endpoints.
bool open_to_every_client(const std::string& path) { return path == "/metrics" || path == "/"; }

HttpResponse refusal(int status, const std::string& why) {
  HttpResponse r = text_response(status, why + "\n");
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"periscope\"");
  return r;
}

}  // namespace

std::optional<HttpResponse> refuse(const HttpRequest& request, const HttpGuardConfig& config) {
  if (!host_allowed(request.host, config)) {
    return refusal(421, "Host '" + request.host +
                            "' is not this endpoint (use its address or localhost; PERISCOPE_HTTP_HOSTS adds names)");
  }
  if (auto why = cross_site_reason(request); !why.empty()) return refusal(403, "refused: " + why);
  std::string ignored;  // a malformed target is the router's to answer (400); here it needs identity
  UrlTarget target = parse_url_target(request.target, &ignored);
  if (open_to_every_client(target.path) || has_token(request, config)) return std::nullopt;
  const auto& uid = request.peer.uid;
  if (request.peer.loopback && uid && (*uid == config.owner || *uid == 0)) return std::nullopt;
  std::string who = !request.peer.loopback ? "a client from another host"
                    : uid                  ? "uid " + std::to_string(*uid)
                                           : "a loopback client whose uid the kernel did not tell";
  std::string how = "connect over loopback as uid " + std::to_string(config.owner) + " or root";
  if (!config.token.empty()) how += ", or send 'Authorization: Bearer' with the token in " + config.token_file;
  return refusal(401, "permission denied: " + who + " may not use " + target.path + "; " + how);
}

}  // namespace periscope::agent
