// The manhole wire protocol, shared by the agent and the viewer. See docs/protocol.md.
//
// A connection starts in text mode (for people using socat): a banner, then a prompt; each
// line is a command; replies are readable text. The line "mode json" switches the connection to
// framed mode (for programs): every reply is one JSON object on one line. Requests stay lines,
// either a command line or a JSON object {"command": NAME, "args": [...]}.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace periscope::protocol {

inline constexpr size_t kMaxLineBytes = 64 * 1024;
inline constexpr std::string_view kPrompt = "periscope> ";
inline constexpr std::string_view kJsonModeCommand = "mode json";
inline constexpr int kProtocolVersion = 1;

// What a command produced. `text` is for people; `data` is the same content for programs.
struct Reply {
  bool ok = true;
  std::string text;
  nlohmann::json data;
  std::string error;           // set when !ok
  bool close_session = false;  // `quit`

  static Reply success(std::string text, nlohmann::json data = nullptr);
  static Reply failure(std::string error);
};

// One framed reply: a single line of JSON (no raw newlines), ending in '\n'.
std::string encode_frame(const std::string& command, const Reply& reply);
// The frame that acknowledges "mode json": tells the client who it is talking to.
std::string encode_hello_frame(int pid, const std::string& process_name, const std::string& version);
// A reply as text for a person, ending in '\n' (errors start with "error: ").
std::string render_text(const Reply& reply);

// A request line in framed mode: a JSON object {"command": ..., "args": [...]} or a command line.
struct Request {
  std::vector<std::string> words;  // command name first
  std::string error;               // non-empty when the request is malformed
};
Request parse_request(std::string_view line, bool json_mode);

// The JSON request the viewer sends for `words` (no quoting problems with spaces or newlines).
std::string encode_request(const std::vector<std::string>& words);

// JSON text that never throws on invalid UTF-8 (bytes from a host are not always UTF-8).
std::string dump_json(const nlohmann::json& value, int indent = -1);

}  // namespace periscope::protocol
