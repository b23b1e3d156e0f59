#include "agent/src/http/http_peer.h"

#include <arpa/inet.h>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace periscope::agent {

namespace {

// An address as sock_diag wants it: IPv4 (also an IPv4-mapped IPv6 address) or IPv6.
struct Endpoint {
  int family = AF_UNSPEC;
  uint16_t port_be = 0;  // network byte order
  uint32_t addr[4] = {};
};

bool endpoint_of(const sockaddr_storage& s, Endpoint* out) {
  if (s.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(s);
    out->family = AF_INET;
    out->port_be = a.sin_port;
    std::memcpy(out->addr, &a.sin_addr, 4);
    return true;
  }
  if (s.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(s);
    out->port_be = a.sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr)) {  // a dual-stack listener: the client's socket is IPv4
      out->family = AF_INET;
      std::memcpy(out->addr, a.sin6_addr.s6_addr + 12, 4);
    } else {
      out->family = AF_INET6;
      std::memcpy(out->addr, &a.sin6_addr, 16);
    }
    return true;
  }
  return false;
}

bool is_loopback(const Endpoint& e) {
  if (e.family == AF_INET) return (reinterpret_cast<const uint8_t*>(e.addr)[0]) == 127;
  static const uint32_t kV6Loopback[4] = {0, 0, 0, htonl(1)};
  return std::memcmp(e.addr, kV6Loopback, 16) == 0;
}

// The uid owning the socket whose local end is `local` and remote end `remote`.
std::optional<uid_t> socket_owner(const Endpoint& local, const Endpoint& remote) {
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::nullopt;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } query{};
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;  // one socket, looked up exactly (no dump)
  query.request.sdiag_family = static_cast<uint8_t>(local.family);
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0u;
  query.request.id.idiag_sport = local.port_be;
  query.request.id.idiag_dport = remote.port_be;
  std::memcpy(query.request.id.idiag_src, local.addr, sizeof local.addr);
  std::memcpy(query.request.id.idiag_dst, remote.addr, sizeof remote.addr);
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::optional<uid_t> uid;
  if (::sendto(fd, &query, sizeof query, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
      static_cast<ssize_t>(sizeof query)) {
    alignas(nlmsghdr) char reply[8192];
    timeval wait{1, 0};  // the kernel answers at once; never hang the io thread on it
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    ssize_t n = ::recv(fd, reply, sizeof reply, 0);
    const auto* h = reinterpret_cast<const nlmsghdr*>(reply);
    if (n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(inet_diag_msg))) && NLMSG_OK(h, static_cast<unsigned>(n)) &&
        h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      const auto* msg = reinterpret_cast<const inet_diag_msg*>(reply + NLMSG_HDRLEN);
      // A socket its process already closed (orphaned, TIME_WAIT) reports uid 0 and inode 0:
      // another user could send a request, close at once and pass for root. Only a socket still
      // held by a process tells its owner.
      if (msg->idiag_inode != 0) uid = msg->idiag_uid;
    }
  }
  ::close(fd);
  return uid;
}

}  // namespace

HttpPeer http_peer_of(int fd) {
  HttpPeer peer;
  sockaddr_storage ours{}, theirs{};
  socklen_t ours_len = sizeof ours, theirs_len = sizeof theirs;
  Endpoint local, remote;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ours), &ours_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&theirs), &theirs_len) != 0 || !endpoint_of(ours, &local) ||
      !endpoint_of(theirs, &remote)) {
    return peer;
  }
  peer.loopback = is_loopback(remote);
  if (peer.loopback) peer.uid = socket_owner(remote, local);  // the client's socket: its local end is our peer
  return peer;
}

}  // namespace periscope::agent
