#include "manhole/session.h"

#include "manhole/command_runner.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <istream>
#include <sys/socket.h>
#include <utility>
#include <vector>

#include "manhole/owned_fds.h"
#include "manhole/session_scope.h"
#include "protocol/protocol.h"

namespace periscope::manhole {

namespace asio = boost::asio;
using boost::system::error_code;

void send_last_words(int fd, const std::string& text) {
  (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

namespace {

class SessionImpl final : public Session, public std::enable_shared_from_this<SessionImpl> {
 public:
  SessionImpl(asio::io_context& io, int fd, const SessionSettings& settings, const CommandRegistry& registry,
              std::function<void()> on_closed)
      : io_(io), socket_(io), timer_(io), input_(protocol::kMaxLineBytes + 1), settings_(settings), registry_(registry),
        on_closed_(std::move(on_closed)), fd_(fd) {
    error_code ec;
    socket_.assign(asio::local::stream_protocol(), fd, ec);
    if (ec) {
      close_tracked(fd);
      closed_ = true;
    }
  }

  void start() {
    if (closed_) {
      finish();
      return;
    }
    arm_idle_timer();
    write(settings_.banner + std::string(protocol::kPrompt), false);
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.release(ec);  // cancels pending operations; the fd is ours to close
    close_tracked(fd_);
    finish();
  }

 private:
  void finish() {
    for (auto& undo : std::exchange(on_end_, {})) {  // what the session's commands left to undo
      try {
        undo();
      } catch (...) {
      }
    }
    if (on_closed_) {
      auto cb = std::move(on_closed_);
      on_closed_ = nullptr;
      cb();
    }
  }

  void arm_idle_timer() {
    timer_.expires_after(settings_.idle_timeout);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_) return;  // cancelled: there was activity, or we closed
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(self->settings_.idle_timeout).count();
      self->say_and_close("idle for " + std::to_string(secs) + " s; closing connection");
    });
  }

  void say_and_close(const std::string& error) {
    protocol::Reply r = protocol::Reply::failure(error);
    send_last_words(fd_, json_mode_ ? protocol::encode_frame("", r) : "\n" + protocol::render_text(r));
    close();
  }

  void read_line() {
    asio::async_read_until(socket_, input_, '\n', [self = shared_from_this()](const error_code& ec, size_t n) {
      if (self->closed_) return;
      if (ec == asio::error::not_found) {
        self->say_and_close("line longer than " + std::to_string(protocol::kMaxLineBytes) + " bytes; closing connection");
        return;
      }
      if (ec) {  // EOF or reset: the client is gone
        self->close();
        return;
      }
      self->arm_idle_timer();
      std::string line(asio::buffers_begin(self->input_.data()), asio::buffers_begin(self->input_.data()) + n);
      self->input_.consume(n);
      self->handle_line(std::move(line));
    });
  }

  void handle_line(std::string line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line == protocol::kJsonModeCommand) {
      json_mode_ = true;
      write("\n" + settings_.hello_frame, false);
      return;
    }
    protocol::Request request = protocol::parse_request(line, json_mode_);
    if (request.error.empty() && request.words.empty()) {  // blank line
      if (json_mode_) read_line();
      else write(std::string(protocol::kPrompt), false);
      return;
    }
    if (!request.error.empty()) return answer(request.words, protocol::Reply::failure(request.error));
    // The next line is read once this one is answered, however long an application command takes.
    SessionScope scope(&on_end_, id_);
    run_command(registry_, request.words, io_, settings_.command_timeout, [self = shared_from_this(), words = request.words](protocol::Reply reply) {
                  if (!self->closed_) self->answer(words, std::move(reply));
                });
  }

  void answer(const std::vector<std::string>& words, protocol::Reply reply) {
    std::string name = words.empty() ? std::string() : words[0];
    std::string out = json_mode_ ? protocol::encode_frame(name, reply) : protocol::render_text(reply);
    if (!json_mode_ && !reply.close_session) out += protocol::kPrompt;
    write(std::move(out), reply.close_session);
  }

  void write(std::string text, bool close_after) {
    output_ = std::move(text);
    asio::async_write(socket_, asio::buffer(output_),
                      [self = shared_from_this(), close_after](const error_code& ec, size_t) {
                        if (self->closed_) return;
                        if (ec || close_after) {
                          self->close();
                          return;
                        }
                        self->arm_idle_timer();
                        self->read_line();
                      });
  }

  asio::io_context& io_;
  asio::local::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf input_;
  std::string output_;
  const SessionSettings settings_;
  const CommandRegistry& registry_;
  std::function<void()> on_closed_;
  int fd_;
  bool json_mode_ = false;
  bool closed_ = false;
  std::vector<std::function<void()>> on_end_;  // run when the session ends (session_scope.h)
  const uint64_t id_ = next_session_id();       // this session's, for what its commands own
};

}  // namespace

std::shared_ptr<Session> start_session(asio::io_context& io, int fd, const SessionSettings& settings,
                                       const CommandRegistry& registry, std::function<void()> on_closed) {
  auto session = std::make_shared<SessionImpl>(io, fd, settings, registry, std::move(on_closed));
  session->start();
  return session;
}

}  // namespace periscope::manhole
