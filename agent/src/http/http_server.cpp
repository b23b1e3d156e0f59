#include "agent/src/http/http_server.h"

#include <arpa/inet.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <cstring>
#include <algorithm>
#include <list>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/src/http/http_peer.h"
#include "manhole/accept_loop.h"
#include "manhole/owned_fds.h"

namespace periscope::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

// One connection. Timeouts are our own timer, not beast::tcp_stream's: that one closes the fd
// itself on expiry, behind the back of the fork-safe fd table (which would then close a number
// that may already belong to the host).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::io_context& io, int fd, HttpPeer peer, const HttpServerConfig& config, const HttpRouter& router,
              HttpCounters& counters, std::function<void()> on_closed)
      : socket_(io), timer_(io), fd_(fd), config_(config), router_(router), counters_(counters),
        on_closed_(std::move(on_closed)), peer_(std::move(peer)) {
    error_code ec;
    socket_.assign(config.address.v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
    if (ec) closed_ = true;
  }

  void start() {
    if (closed_) return finish();
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    error_code ec;
    socket_.release(ec);  // cancels pending operations; the fd is ours to close
    finish();
  }

 private:
  void finish() {
    manhole::close_tracked(fd_);
    if (on_closed_) std::exchange(on_closed_, nullptr)();
  }

  // The whole request (or the whole response) must get through within the timeout.
  void arm_timer() {
    timer_.expires_after(config_.timeout);
    timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed_) return;
      ++self->counters_.timed_out;
      self->close();
    });
  }

  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(config_.max_body_bytes);
    arm_timer();
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](const error_code& ec, size_t) {
      self->on_read(ec);
    });
  }

  void on_read(const error_code& ec) {
    if (closed_) return;
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) {
      return close();
    }
    if (ec) {
      keep_alive_ = false;
      int status = ec == http::error::body_limit ? 413 : ec == http::error::header_limit ? 431 : 400;
      return write(text_response(status, "bad request: " + ec.message() + "\n"));
    }
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    timer_.cancel();  // a profile may take its seconds before the response is ready
    HttpRequest r;
    r.method = std::string(request.method_string());
    r.target = std::string(request.target());
    r.host = std::string(request[http::field::host]);
    r.origin = std::string(request[http::field::origin]);
    r.sec_fetch_site = std::string(request["Sec-Fetch-Site"]);
    r.authorization = std::string(request[http::field::authorization]);
    r.peer = peer_;
    r.on_abandoned = std::make_shared<std::function<void()>>();
    answering_ = r.on_abandoned;
    router_.handle(r, [self = shared_from_this()](HttpResponse response) { self->write(std::move(response)); });
    if (answering_) watch_for_hang_up();  // the answer takes a while (a profile)
  }

  // Until the answer is written: a client that hangs up (EOF, reset) abandons the request, and
  // what the handler started for it ends now rather than after its seconds. A client that only
  // half-closes after its request reads as gone too, as with Go's net/http; a pipelined next
  // request ends the watch (the socket stays readable).
  void watch_for_hang_up() {
    socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_ || !self->answering_) return;
      char byte;
      const ssize_t n = ::recv(self->fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // the client's next request (pipelined): it is still there
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return self->watch_for_hang_up();
      ++self->counters_.abandoned;
      if (auto undo = std::exchange(self->answering_, nullptr); undo && *undo) (*undo)();
      self->close();
    });
  }

  void write(HttpResponse r) {
    answering_ = nullptr;
    if (closed_) return;
    ++counters_.responses[r.status];
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(r.status));
    response_.set(http::field::server, "periscope");
    response_.set("X-Content-Type-Options", "nosniff");  // a browser never runs a reply as a script
    response_.set(http::field::cache_control, "no-store");
    response_.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) response_.set(name, value);
    response_.body() = std::move(r.body);
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    arm_timer();
    http::async_write(socket_, response_, [self = shared_from_this()](const error_code& ec, size_t) {
      if (self->closed_) return;
      if (ec || !self->keep_alive_) return self->close();
      self->read();
    });
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  int fd_;
  const HttpServerConfig& config_;
  const HttpRouter& router_;
  HttpCounters& counters_;
  std::function<void()> on_closed_;
  beast::flat_buffer buffer_{16 * 1024};
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool closed_ = false;
  HttpPeer peer_;  // who connected: the guard's question, asked once per connection
  std::shared_ptr<std::function<void()>> answering_;  // the request being answered, until written
};

// Best effort, never blocks: the socket is non-blocking and the reply is small.
void send_and_forget(int fd, const std::string& text) {
  ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}

void refuse_busy(int fd, const std::string& why) {
  send_and_forget(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\n"
                      "Connection: close\r\n"
                      "Content-Length: " + std::to_string(why.size()) + "\r\n\r\n" + why);
}

// Whose connections count together against the per-peer cap; empty for the process's own uid
// and root over loopback, who are never capped (they may do everything anyway).
std::string peer_key(int fd, const HttpPeer& peer) {
  if (peer.loopback && peer.uid) {
    if (*peer.uid == 0 || *peer.uid == ::geteuid()) return {};
    return "uid " + std::to_string(*peer.uid);
  }
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  char text[INET6_ADDRSTRLEN] = "?";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    const void* ip = address.ss_family == AF_INET6
                         ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr)
                         : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&address)->sin_addr);
    ::inet_ntop(address.ss_family, ip, text, sizeof text);
  }
  return std::string("address ") + text;
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io_context, HttpRouter routes, HttpServerConfig server_config)
      : io(io_context), router(std::move(routes)), config(std::move(server_config)) {}

  asio::io_context& io;
  HttpRouter router;
  HttpServerConfig config;
  HttpCounters counters;
  std::shared_ptr<manhole::AcceptLoop> accepting;
  std::list<std::weak_ptr<HttpSession>> sessions;
  std::map<std::string, int> per_peer;  // open connections of each capped peer
  bool stopped = false;

  // A peer other than the owner holds at most a quarter of the connections: one that connects
  // again and again and sends slowly cannot take the endpoint from everyone else.
  int per_peer_cap() const { return std::max(1, config.max_connections / 4); }

  void admit(int fd) {
    if (counters.active.load() >= config.max_connections) {
      ++counters.refused_busy;
      ++counters.responses[503];
      refuse_busy(fd, "too many connections\n");
      manhole::close_tracked(fd);
      return;
    }
    HttpPeer peer = http_peer_of(fd);
    std::string key = peer_key(fd, peer);
    if (!key.empty() && per_peer[key] >= per_peer_cap()) {
      ++counters.refused_per_peer;
      ++counters.responses[503];
      refuse_busy(fd, "too many connections from " + key + "\n");
      manhole::close_tracked(fd);
      return;
    }
    if (!key.empty()) ++per_peer[key];
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++counters.accepted;
    ++counters.active;
    sessions.remove_if([](const std::weak_ptr<HttpSession>& s) { return s.expired(); });
    auto session = std::make_shared<HttpSession>(io, fd, std::move(peer), config, router, counters,
                                                 [weak = weak_from_this(), key] {
                                                   auto self = weak.lock();
                                                   if (!self) return;
                                                   --self->counters.active;
                                                   if (!key.empty() && --self->per_peer[key] <= 0) {
                                                     self->per_peer.erase(key);
                                                   }
                                                 });
    sessions.push_back(session);
    session->start();
  }
};

HttpServer::HttpServer(asio::io_context& io, HttpRouter router, HttpServerConfig config)
    : impl_(std::make_shared<Impl>(io, std::move(router), std::move(config))) {}

HttpServer::~HttpServer() = default;

const HttpAddress& HttpServer::address() const { return impl_->config.address; }
const HttpCounters& HttpServer::counters() const { return impl_->counters; }

std::string HttpServer::listen() {
  HttpAddress& address = impl_->config.address;
  sockaddr_storage storage{};
  socklen_t length;
  if (address.v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(address.port);
    ::inet_pton(AF_INET6, address.ip.c_str(), &a->sin6_addr);
    length = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(address.port);
    ::inet_pton(AF_INET, address.ip.c_str(), &a->sin_addr);
    length = sizeof *a;
  }
  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd, 128) != 0) {
    std::string err = "cannot listen on " + format_http_address(address) + ": " + std::strerror(errno);
    ::close(fd);
    return err;
  }
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) == 0) {
    address.port = ntohs(address.v6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  impl_->accepting = manhole::AcceptLoop::start(impl_->io, fd, [weak = impl_->weak_from_this()](int connection) {
    if (auto self = weak.lock()) self->admit(connection);
    else manhole::close_tracked(connection);
  });
  return {};
}

void HttpServer::stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  if (s.accepting) s.accepting->stop();
  for (auto& weak : s.sessions) {
    if (auto session = weak.lock()) session->close();
  }
  s.sessions.clear();
}

}  // namespace periscope::agent
