// A command's argument spec, written as its usage: "NAME [VALUE]", "[TID...]", "COMMAND ARGS...".
// Upper-case words are required, [bracketed] ones optional, a trailing "..." repeats.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace periscope::manhole {

struct ArgSpec {
  std::string usage;
  size_t min_args = 0;
  size_t max_args = 0;

  static constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();
  // Returns false (and sets *error) when the usage string itself is malformed.
  static bool parse(std::string_view usage, ArgSpec* out, std::string* error);
  bool accepts(size_t count) const { return count >= min_args && count <= max_args; }
};

}  // namespace periscope::manhole
