#include "protocol/protocol.h"

#include "protocol/command_line.h"

namespace periscope::protocol {

Reply Reply::success(std::string text, nlohmann::json data) {
  Reply r;
  r.text = std::move(text);
  r.data = std::move(data);
  return r;
}

Reply Reply::failure(std::string error) {
  Reply r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}

std::string dump_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string encode_frame(const std::string& command, const Reply& reply) {
  nlohmann::json frame;
  frame["ok"] = reply.ok;
  frame["command"] = command;
  if (reply.ok) {
    frame["data"] = reply.data;
    frame["text"] = reply.text;
  } else {
    frame["error"] = reply.error;
  }
  return dump_json(frame) + "\n";
}

std::string encode_hello_frame(int pid, const std::string& process_name, const std::string& version) {
  nlohmann::json frame{{"ok", true},
                       {"command", "mode"},
                       {"data",
                        {{"mode", "json"},
                         {"protocol", kProtocolVersion},
                         {"agent", "periscope"},
                         {"version", version},
                         {"pid", pid},
                         {"name", process_name}}}};
  return dump_json(frame) + "\n";
}

std::string render_text(const Reply& reply) {
  std::string out = reply.ok ? reply.text : "error: " + reply.error;
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

Request parse_request(std::string_view line, bool json_mode) {
  Request req;
  if (json_mode && !line.empty() && line.front() == '{') {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      req.error = "malformed JSON request";
      return req;
    }
    auto cmd = parsed.find("command");
    if (cmd == parsed.end() || !cmd->is_string() || cmd->get<std::string>().empty()) {
      req.error = "JSON request needs a non-empty string \"command\"";
      return req;
    }
    req.words.push_back(cmd->get<std::string>());
    auto args = parsed.find("args");
    if (args != parsed.end()) {
      if (!args->is_array()) {
        req.error = "\"args\" must be an array of strings";
        return req;
      }
      for (const auto& a : *args) {
        if (!a.is_string()) {
          req.error = "\"args\" must be an array of strings";
          return req;
        }
        req.words.push_back(a.get<std::string>());
      }
    }
    return req;
  }
  auto parsed = split_command_line(line);
  req.words = std::move(parsed.words);
  req.error = std::move(parsed.error);
  return req;
}

std::string encode_request(const std::vector<std::string>& words) {
  nlohmann::json req;
  req["command"] = words.empty() ? std::string() : words.front();
  req["args"] = nlohmann::json::array();
  for (size_t i = 1; i < words.size(); ++i) req["args"].push_back(words[i]);
  return dump_json(req) + "\n";
}

}  // namespace periscope::protocol
