#include "agent/src/http/url_query.h"

namespace periscope::agent {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; '+' is a space in the query (form encoding) but not in the path.
bool decode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

}  // namespace

std::vector<std::string> UrlTarget::all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : query) {
    if (key == name) values.push_back(value);
  }
  return values;
}

std::optional<std::string> UrlTarget::get(std::string_view name) const {
  std::optional<std::string> found;
  for (const auto& [key, value] : query) {
    if (key == name) found = value;
  }
  return found;
}

UrlTarget parse_url_target(std::string_view target, std::string* error) {
  UrlTarget out;
  error->clear();
  if (target.size() > kMaxTargetBytes) {
    *error = "request target longer than " + std::to_string(kMaxTargetBytes) + " bytes";
    return out;
  }
  if (target.empty() || target[0] != '/') {
    *error = "request target must start with '/'";
    return out;
  }
  auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  if (path.find('#') != std::string_view::npos) path = path.substr(0, path.find('#'));
  if (!decode(path, false, &out.path)) {
    *error = "bad percent-escape in the path";
    return out;
  }
  if (question == std::string_view::npos) return out;
  std::string_view query = target.substr(question + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string key, value;
    if (!decode(item.substr(0, eq), true, &key) ||
        (eq != std::string_view::npos && !decode(item.substr(eq + 1), true, &value))) {
      *error = "bad percent-escape in the query";
      return out;
    }
    out.query.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace periscope::agent
