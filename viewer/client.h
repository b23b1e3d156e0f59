// A framed (JSON mode) connection to one agent's manhole. Blocking, with timeouts; every failure
// is a CliError whose message a user can act on.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

namespace periscope::viewer {

class Client {
 public:
  // Finds the agent of `pid`, connects and switches to JSON mode.
  static Client connect_to_pid(pid_t pid, std::chrono::milliseconds timeout);
  static Client connect_to_path(const std::string& socket_path, pid_t pid, std::chrono::milliseconds timeout);

  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  ~Client();

  // Runs one command; returns the reply frame {"ok", "command", "data"/"text" or "error"}.
  nlohmann::json call(const std::vector<std::string>& words);
  // The same, but a reply with "ok": false becomes a CliError carrying the agent's message.
  nlohmann::json call_checked(const std::vector<std::string>& words);
  const nlohmann::json& hello() const { return hello_; }  // pid, name, version of the agent
  pid_t pid() const { return pid_; }

 private:
  Client(int fd, pid_t pid, std::chrono::milliseconds timeout) : fd_(fd), pid_(pid), timeout_(timeout) {}
  std::string read_line();
  void send_all(const std::string& data);

  int fd_ = -1;
  pid_t pid_ = 0;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
  nlohmann::json hello_;
};

}  // namespace periscope::viewer
