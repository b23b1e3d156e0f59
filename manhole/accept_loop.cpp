#include "manhole/accept_loop.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>

#include "manhole/owned_fds.h"

namespace periscope::manhole {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

class AcceptLoopImpl : public AcceptLoop, public std::enable_shared_from_this<AcceptLoopImpl> {
 public:
  AcceptLoopImpl(asio::io_context& io, int fd, std::function<void(int)> on_accept)
      : listener_(io), backoff_(io), fd_(fd), on_accept_(std::move(on_accept)) {
    track_fd(fd);
    listener_.assign(fd);
  }

  void wait() {
    listener_.async_wait(asio::posix::descriptor_base::wait_read, [self = shared_from_this()](const error_code& ec) {
      if (ec || self->stopped_) return;
      self->accept_ready();
    });
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    backoff_.cancel();
    listener_.release();  // cancels the wait; the fd is closed through the table
    close_tracked(fd_);
  }

 private:
  void accept_ready() {
    for (;;) {
      int fd = accept_tracked(fd_);
      if (fd >= 0) {
        on_accept_(fd);
        if (stopped_) return;
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        backoff_.expires_after(std::chrono::milliseconds(100));
        backoff_.async_wait([self = shared_from_this()](const error_code& ec) {
          if (!ec && !self->stopped_) self->wait();
        });
        return;
      }
      break;  // EAGAIN: drained
    }
    wait();
  }

  asio::posix::stream_descriptor listener_;
  asio::steady_timer backoff_;
  int fd_;
  std::function<void(int)> on_accept_;
  bool stopped_ = false;
};

}  // namespace

std::shared_ptr<AcceptLoop> AcceptLoop::start(asio::io_context& io, int listen_fd,
                                              std::function<void(int fd)> on_accept) {
  auto loop = std::make_shared<AcceptLoopImpl>(io, listen_fd, std::move(on_accept));
  loop->wait();
  return loop;
}

}  // namespace periscope::manhole
