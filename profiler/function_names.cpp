#include "profiler/function_names.h"

namespace periscope {

namespace {

// Index just past the bracket group that opens at `open`, or npos when it never closes.
size_t skip_group(std::string_view s, size_t open) {
  const char opening = s[open];
  const char closing = opening == '<' ? '>' : opening == '(' ? ')' : opening == '[' ? ']' : '}';
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == opening) ++depth;
    else if (s[i] == closing && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

}  // namespace

std::string short_function_name(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    char c = name[i];
    bool after_operator = out.ends_with("operator");
    if (c == '<' && !after_operator && !out.ends_with("operator<")) {
      size_t end = skip_group(name, i);
      if (end == std::string_view::npos) return std::string(name);
      out += "<…>";
      i = end;
    } else if (c == '(' && name.substr(i).rfind("(anonymous namespace)", 0) == 0) {
      out += "(anonymous namespace)";
      i += 21;
    } else if (c == '(' && !after_operator) {
      size_t end = skip_group(name, i);
      if (end == std::string_view::npos) return std::string(name);
      i = end;
      while (i < name.size() && name[i] != ':' && name[i] != '<' && name[i] != '(') ++i;  // " const", " &&"
    } else if (c == '{') {  // {lambda(int)#1}: keep as written
      size_t end = skip_group(name, i);
      if (end == std::string_view::npos) return std::string(name);
      out += name.substr(i, end - i);
      i = end;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

}  // namespace periscope
