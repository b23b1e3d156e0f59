// The manhole's framed JSON mode, for programs (the viewer, scripts): a request line is a JSON
// object {"command": NAME, "args": [...]} or a command line; every reply is one JSON line.
// See docs/fuzzing.md and docs/protocol.md.
//
// The input is a byte stream as a client would send it: split into lines the way the session
// does (manhole/session.cpp reads with asio::async_read_until(..., '\n') into a streambuf capped at
// kMaxLineBytes + 1, then handle_line() trims "\r\n" and switches mode on "mode json"). That
// framing lives inside Asio handlers and has no pure function of its own, so its few lines are
// mirrored here; everything after it (parse_request, encode_frame, render_text, dump_json,
// encode_request, encode_hello_frame) is the real code.
//
// Invariants: nothing throws (these run inside Asio handlers, where an escaping exception ends
// the host); a JSON request without error has a non-empty command; every frame is exactly one
// line of valid JSON that says what it was given (byte for byte when that was valid UTF-8);
// encode_request and parse_request round-trip; render_text ends in a newline.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/command_line.h"
#include "protocol/protocol.h"

using namespace periscope::protocol;
using nlohmann::json;

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      __builtin_fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

bool all_valid(const std::vector<std::string>& words) {
  for (const auto& w : words) {
    if (!valid_utf8(w)) return false;
  }
  return true;
}

// A frame: one line, valid JSON, an object whose "ok" and "command" are what was sent.
json check_frame(const std::string& frame, const std::string& command, bool ok) {
  CHECK(!frame.empty() && frame.back() == '\n');
  CHECK(frame.find('\n') == frame.size() - 1);
  json parsed = json::parse(frame, nullptr, /*allow_exceptions=*/false);
  CHECK(!parsed.is_discarded() && parsed.is_object());
  CHECK(parsed.at("ok").is_boolean() && parsed.at("ok").get<bool>() == ok);
  CHECK(parsed.at("command").is_string());
  if (valid_utf8(command)) CHECK(parsed.at("command").get<std::string>() == command);
  return parsed;
}

void handle_line(std::string line, bool* json_mode) {
  // session.cpp, handle_line(): trim, then "mode json" switches the connection to frames.
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line == kJsonModeCommand) {
    *json_mode = true;
    check_frame(encode_hello_frame(4242, line, "0.1"), "mode", true);
    return;
  }
  Request request = parse_request(line, *json_mode);
  if (!*json_mode || line.empty() || line.front() != '{') {
    // A command line, in either mode.
    ParsedLine split = split_command_line(line);
    CHECK(request.words == split.words && request.error == split.error);
  } else if (request.error.empty()) {
    CHECK(!request.words.empty() && !request.words[0].empty());
    CHECK(all_valid(request.words));  // nlohmann rejects invalid UTF-8 in JSON text
  }
  if (request.error.empty() && request.words.empty()) return;  // a blank line: a prompt, no reply

  std::string name = request.words.empty() ? std::string() : request.words[0];
  // Replies carry the host's bytes (names, values, errors): whatever they are, a frame is one line.
  Reply reply;
  if (!request.error.empty()) {
    reply = Reply::failure(request.error);
  } else {
    json data = {{"words", request.words}, {"line", line}, {"n", request.words.size()}};
    reply = Reply::success(line, std::move(data));
  }
  json frame = check_frame(encode_frame(name, reply), name, reply.ok);
  if (reply.ok) {
    CHECK(frame.at("text").is_string() && frame.at("data").is_object());
    if (valid_utf8(line)) CHECK(frame.at("text").get<std::string>() == line);
    if (all_valid(request.words)) CHECK(frame.at("data").at("words").get<std::vector<std::string>>() == request.words);
  } else {
    CHECK(frame.at("error").is_string());
  }
  std::string text = render_text(reply);
  CHECK(!text.empty() && text.back() == '\n');
  CHECK(reply.ok || text.rfind("error: ", 0) == 0);
  Reply unknown = Reply::failure("unknown command '" + printable(name) + "'");
  check_frame(encode_frame(name, unknown), name, false);
  (void)dump_json(reply.data, 2);  // indented, as `periscope exec --json` prints it

  // What the viewer sends for these words parses back to the same words.
  if (request.error.empty() && !request.words[0].empty()) {
    std::string encoded = encode_request(request.words);
    CHECK(!encoded.empty() && encoded.back() == '\n' && encoded.find('\n') == encoded.size() - 1);
    encoded.pop_back();
    Request back = parse_request(encoded, /*json_mode=*/true);
    CHECK(back.error.empty());
    CHECK(back.words.size() == request.words.size());
    if (all_valid(request.words)) CHECK(back.words == request.words);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  // The first byte says whether the connection already said "mode json" (most inputs are about
  // framed mode; the seeds start with 'J').
  bool json_mode = false;
  if (!stream.empty()) {
    json_mode = stream.front() == 'J';
    stream.remove_prefix(1);
  }
  while (!stream.empty()) {
    size_t nl = stream.find('\n');
    size_t n = nl == std::string_view::npos ? stream.size() : nl + 1;
    // async_read_until with a streambuf of kMaxLineBytes + 1: a longer line closes the connection.
    if (n > kMaxLineBytes + 1) return 0;
    if (nl == std::string_view::npos) return 0;  // EOF before the newline: the session just closes
    handle_line(std::string(stream.substr(0, n)), &json_mode);
    stream.remove_prefix(n);
  }
  return 0;
}
