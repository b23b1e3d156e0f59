// What a descriptor is, beyond its number: (st_dev, st_ino), and for anonymous inodes (epoll,
// eventfd, timerfd, perf_event — which all share one inode) the kind the kernel names in
// /proc/self/fd and the owner mark the description carries. Hosts close descriptors they did not open and reuse the numbers; whoever holds a
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
  // Anonymous inodes only: every eventfd (epoll, timerfd, perf_event) shares one inode, so the
  // description is marked by its owner (F_SETOWN_EX, which only matters with O_ASYNC): the thread
  // that first asked for its identity, or the owner it already had (a perf event's sampled thread).
  // A host's new eventfd at the same number has no owner, or its own.
  int owner_type = 0;
  pid_t owner = 0;

  static std::optional<FdIdentity> of(int fd);
  // async-signal-safe: fstat and readlinkat only (fork children and the agent's checks use it).
  bool still_at(int fd) const;
  bool anonymous() const { return kind[0] != '\0'; }
  std::string describe() const;
};

// async-signal-safe: whether `fd` is an anonymous inode of this kind ("anon_inode:[perf_event]").
bool fd_is_kind(int fd, const char* kind);

}  // namespace periscope
