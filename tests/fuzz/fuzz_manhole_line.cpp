// The manhole's text mode: a line typed by a person (socat, `periscope attach`) split into words
// (quotes, backslash escapes), as the agent does for every line it reads. See docs/fuzzing.md.
//
// Invariants: nothing throws; a malformed line has an error and no words; parse_request in text
// mode is split_command_line; quoting every word and joining them with spaces gives the same words
// back (what the viewer's completion relies on); printable() is short and printable.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/command_line.h"
#include "protocol/protocol.h"

using namespace periscope::protocol;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      __builtin_fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxLineBytes) return -1;  // the session never hands a longer line to the parser
  std::string_view line(reinterpret_cast<const char*>(data), size);

  ParsedLine parsed = split_command_line(line);
  if (!parsed.error.empty()) CHECK(parsed.words.empty());

  Request request = parse_request(line, /*json_mode=*/false);
  CHECK(request.words == parsed.words);
  CHECK(request.error == parsed.error);

  if (parsed.error.empty()) {
    std::string joined;
    for (const auto& w : parsed.words) {
      std::string q = quote_word(w);
      ParsedLine one = split_command_line(q);
      CHECK(one.error.empty());
      CHECK(one.words.size() == 1 && one.words[0] == w);
      joined += (joined.empty() ? "" : " ") + q;
    }
    ParsedLine again = split_command_line(joined);
    CHECK(again.error.empty());
    CHECK(again.words == parsed.words);
  }

  // The raw line as one word, the way the viewer quotes an argument it was given.
  std::string whole = quote_word(line);
  ParsedLine back = split_command_line(whole);
  CHECK(back.error.empty());
  CHECK(back.words.size() == 1 && back.words[0] == line);

  for (size_t max_len : {size_t{0}, size_t{8}, size_t{64}}) {
    std::string p = printable(line, max_len);
    CHECK(p.size() <= max_len + 3);
    for (unsigned char c : p) CHECK(c >= 0x20 && c < 0x7f);
  }
  return 0;
}
