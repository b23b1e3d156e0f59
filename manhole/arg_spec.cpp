#include "manhole/arg_spec.h"

#include "protocol/command_line.h"

namespace periscope::manhole {

bool ArgSpec::parse(std::string_view usage, ArgSpec* out, std::string* error) {
  ArgSpec spec;
  spec.usage = std::string(usage);
  auto parsed = protocol::split_command_line(usage);
  if (!parsed.error.empty()) {
    *error = "bad usage string: " + parsed.error;
    return false;
  }
  bool saw_optional = false;
  for (size_t i = 0; i < parsed.words.size(); ++i) {
    std::string_view w = parsed.words[i];
    bool optional = w.size() >= 2 && w.front() == '[' && w.back() == ']';
    if (optional) w = w.substr(1, w.size() - 2);
    bool repeats = w.size() > 3 && w.substr(w.size() - 3) == "...";
    if (w.empty() || w.find_first_of("[]") != std::string_view::npos) {
      *error = "bad usage string: '" + parsed.words[i] + "'";
      return false;
    }
    if (repeats && i + 1 != parsed.words.size()) {
      *error = "bad usage string: only the last argument may repeat ('" + parsed.words[i] + "')";
      return false;
    }
    if (!optional && saw_optional) {
      *error = "bad usage string: a required argument follows an optional one";
      return false;
    }
    saw_optional |= optional;
    if (!optional) ++spec.min_args;
    spec.max_args = repeats ? kUnbounded : spec.max_args + 1;
  }
  *out = std::move(spec);
  return true;
}

}  // namespace periscope::manhole
