#include "protocol/command_line.h"

namespace periscope::protocol {

ParsedLine split_command_line(std::string_view line) {
  ParsedLine out;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        word += line[++i];
      } else {
        word += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) out.words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 < line.size()) word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) {
    out.words.clear();
    out.error = std::string("unterminated ") + (quote == '"' ? "double" : "single") + " quote";
    return out;
  }
  if (in_word) out.words.push_back(std::move(word));
  return out;
}

std::string quote_word(std::string_view word) {
  bool plain = !word.empty();
  for (char c : word) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '\\') plain = false;
  }
  if (plain) return std::string(word);
  std::string out = "\"";
  for (char c : word) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string printable(std::string_view word, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < word.size() && i < max_len; ++i) {
    auto c = static_cast<unsigned char>(word[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (word.size() > max_len) out += "...";
  return out;
}

}  // namespace periscope::protocol
