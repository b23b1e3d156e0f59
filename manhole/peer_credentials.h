// Who is on the other end of a Unix socket (SO_PEERCRED, as of connect()), and whether we let
// them in: the process's own uid or root, nobody else.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace periscope::manhole {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

std::optional<PeerCredentials> peer_credentials(int fd);

// Empty when `peer` may use a manhole owned by `owner`, otherwise the reason it may not.
std::string check_peer(const PeerCredentials& peer, uid_t owner);

}  // namespace periscope::manhole
