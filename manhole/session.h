// One manhole connection: reads command lines, runs them through the registry, writes replies.
// Lives entirely on the io thread that owns `io`. Bounded: a line over kMaxLineBytes gets an
// error and the connection is closed; a connection idle past the timeout is closed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "manhole/command_registry.h"

namespace boost::asio {
class io_context;
}

namespace periscope::manhole {

struct SessionSettings {
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  std::string banner;       // text sent on connect, before the first prompt
  std::string hello_frame;  // sent after "mode json"
  std::chrono::milliseconds command_timeout{5000};  // for the application's commands (command_runner.h)
};

class Session {
 public:
  virtual ~Session() = default;
  virtual void close() = 0;  // io thread only
};

// Takes ownership of the connected socket `fd`; `on_closed` runs once, on the io thread.
std::shared_ptr<Session> start_session(boost::asio::io_context& io, int fd, const SessionSettings& settings,
                                       const CommandRegistry& registry, std::function<void()> on_closed);

// Writes `text` without blocking and without SIGPIPE, as much as fits; for last words on a
// connection we are about to close.
void send_last_words(int fd, const std::string& text);

}  // namespace periscope::manhole
