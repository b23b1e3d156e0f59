// Who is on the other end of an HTTP connection: whether it comes over loopback and, if so, the
// uid that owns the connecting socket, read from the kernel's socket tables (sock_diag, the exact
// lookup `ss` uses): the same guarantee SO_PEERCRED gives the manhole's Unix socket.
//
// Threading: any thread; opens and closes one netlink socket per call (no descriptor stays).
#pragma once

#include <optional>
#include <sys/types.h>

namespace periscope::agent {

struct HttpPeer {
  bool loopback = false;
  std::optional<uid_t> uid;  // loopback peers only, when the kernel told it
};

// The peer of the connected TCP socket `fd`.
HttpPeer http_peer_of(int fd);

}  // namespace periscope::agent
