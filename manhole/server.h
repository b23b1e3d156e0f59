// The manhole's listening Unix socket: accepts connections (close-on-exec), checks each peer's
// uid, caps concurrent sessions and hands each connection to a Session.
//
// Threading: construct anywhere; listen() on any thread before the io thread runs; everything
// else, including stop(), on the io thread. Counters may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "manhole/command_registry.h"
#include "manhole/session.h"

namespace boost::asio {
class io_context;
}

namespace periscope::manhole {

struct ServerConfig {
  std::string socket_path;
  int max_connections = 16;
  SessionSettings session;
  std::function<void(const std::string&)> log;  // one line, no trailing newline
};

struct ServerCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused_uid{0};
  std::atomic<uint64_t> refused_busy{0};
  std::atomic<int> active{0};
};

class Server {
 public:
  Server(boost::asio::io_context& io, const CommandRegistry& registry, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates, binds (0600) and listens on the socket; empty on success, else why not.
  [[nodiscard]] std::string listen();
  void stop();  // io thread: stops accepting, closes sessions, removes the socket file

  const ServerCounters& counters() const;
  const std::string& socket_path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace periscope::manhole
