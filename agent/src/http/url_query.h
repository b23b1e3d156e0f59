// The request target of an HTTP request: its path and its query parameters, percent-decoded.
// Outside input: every malformed target is an error, never an exception or a guess.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace periscope::agent {

struct UrlTarget {
  std::string path;  // decoded; always starts with '/'
  std::vector<std::pair<std::string, std::string>> query;  // in order, repeats kept

  // The values of `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  // The last value of `name`, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
};

inline constexpr size_t kMaxTargetBytes = 8192;

// Empty `error` on success. Rejects targets that are not origin-form ("/path?query"), bad
// percent escapes, NUL bytes and targets over kMaxTargetBytes.
UrlTarget parse_url_target(std::string_view target, std::string* error);

}  // namespace periscope::agent
