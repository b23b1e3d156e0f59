// Splitting a manhole command line into words, the way a shell user expects:
// whitespace separates words, "double" and 'single' quotes group them, backslash escapes.
// Pure functions; used by the agent (parsing) and the viewer (completion, quoting).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace periscope::protocol {

struct ParsedLine {
  std::vector<std::string> words;
  std::string error;  // non-empty when the line is malformed (e.g. an unterminated quote)
};

ParsedLine split_command_line(std::string_view line);

// Quotes a word so that split_command_line gives it back unchanged.
std::string quote_word(std::string_view word);

// A word made safe to echo in an error line: non-printable bytes become '?', long words are cut.
std::string printable(std::string_view word, size_t max_len = 64);

}  // namespace periscope::protocol
