// The HTTP admin endpoint's sockets (Boost.Beast on the agent's io thread): accepts TCP
// connections (close-on-exec, in the fork-safe fd table), reads one request at a time with a
// size limit and a timeout, hands it to the HttpRouter and writes the response; keep-alive.
// Connections over the cap get a 503 and are closed at once.
//
// Threading: listen() before the io thread runs or on it; everything else on the io thread.
// Counters may be read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/src/http/http_address.h"
#include "agent/src/http/http_router.h"

namespace boost::asio {
class io_context;
}

namespace periscope::agent {

inline constexpr size_t kMaxHeaderBytes = 8 * 1024;  // request line and headers

struct HttpServerConfig {
  HttpAddress address;
  int max_connections = 16;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // to read a request, to write a response
  size_t max_body_bytes = 64 * 1024;
  std::function<void(const std::string&)> log;
};

struct HttpCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused_busy{0};
  std::atomic<uint64_t> timed_out{0};
  std::atomic<uint64_t> refused_per_peer{0};  // a peer other than the owner over its share
  std::atomic<uint64_t> abandoned{0};         // the client hung up before its answer (a profile)
  std::atomic<int> active{0};
  std::map<int, uint64_t> responses;  // by status code; io thread only
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpRouter router, HttpServerConfig config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; empty on success, else why not. With port 0 the kernel picks the port.
  [[nodiscard]] std::string listen();
  const HttpAddress& address() const;  // the bound address, with the real port after listen()
  void stop();  // io thread: closes the listening socket and every connection
  const HttpCounters& counters() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace periscope::agent
