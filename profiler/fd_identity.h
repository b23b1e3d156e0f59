// What a descriptor is, beyond its number: (st_dev, st_ino), and for anonymous inodes (epoll,
// eventfd, timerfd, perf_event — which all share one inode) the kind the kernel names in
// /proc/self/fd. Hosts close descriptors they did not open and reuse the numbers; whoever holds a
// number checks that it is still the same thing before using or closing it.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace periscope {

struct FdIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  char kind[48] = {};  // "anon_inode:[eventpoll]" and the like; empty for other files

  static std::optional<FdIdentity> of(int fd);
  // async-signal-safe: fstat and readlinkat only (fork children and the agent's checks use it).
  bool still_at(int fd) const;
  bool anonymous() const { return kind[0] != '\0'; }
  std::string describe() const;
};

// async-signal-safe: whether `fd` is an anonymous inode of this kind ("anon_inode:[perf_event]").
bool fd_is_kind(int fd, const char* kind);

}  // namespace periscope
