#include "manhole/peer_credentials.h"

#include <sys/socket.h>

namespace periscope::manhole {

std::optional<PeerCredentials> peer_credentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return std::nullopt;
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

std::string check_peer(const PeerCredentials& peer, uid_t owner) {
  if (peer.uid == owner || peer.uid == 0) return {};
  return "permission denied: peer uid " + std::to_string(peer.uid) + " is neither the process's uid " +
         std::to_string(owner) + " nor root";
}

}  // namespace periscope::manhole
