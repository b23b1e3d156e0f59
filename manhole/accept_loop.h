// Accepting connections on a listening socket for the agent's servers (the manhole's Unix
// socket, the HTTP admin's TCP socket): every accepted fd is close-on-exec, non-blocking and in
// the fork-safe fd table; after EMFILE and the like it backs off instead of spinning.
//
// Threading: start() and stop() on the io thread; on_accept runs there too.
#pragma once

#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace periscope::manhole {

class AcceptLoop {
 public:
  // Takes ownership of `listen_fd` (already listening; it is tracked from now on).
  static std::shared_ptr<AcceptLoop> start(boost::asio::io_context& io, int listen_fd,
                                           std::function<void(int fd)> on_accept);
  virtual ~AcceptLoop() = default;
  virtual void stop() = 0;  // stops accepting and closes the listening fd
};

}  // namespace periscope::manhole
