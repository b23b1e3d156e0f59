// What a descriptor is, beyond its number: (st_dev, st_ino), and for anonymous inodes (epoll,
// eventfd, timerfd, perf_event — which all share one inode) the kind the kernel names in
// /proc/self/fd and the mark the description carries. Hosts close descriptors they did not open and reuse the numbers; whoever holds a
// number checks that it is still the same thing before using or closing it.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace periscope {

// The F_SETSIG value that marks the agent's own epoll, eventfd and timerfd descriptions.
constexpr int kFdMarkSignal = 64;

struct FdIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  char kind[48] = {};  // "anon_inode:[eventpoll]" and the like; empty for other files
  // Anonymous inodes only: every eventfd (epoll, timerfd, perf_event) shares one inode, so the
  // open file description carries a mark: its F_SETSIG signal, which matters only with O_ASYNC
  // (epoll, eventfd and timerfd cannot signal at all). A perf event keeps the sampling signal it
  // was given; the others get kFdMarkSignal. A host's new eventfd at the same number has 0. (An
  // F_SETOWN mark would not do: the kernel reads an owner back as 0 once its thread has exited.)
  int mark = 0;

  static std::optional<FdIdentity> of(int fd);
  // async-signal-safe: fstat and readlinkat only (fork children and the agent's checks use it).
  bool still_at(int fd) const;
  bool anonymous() const { return kind[0] != '\0'; }
  std::string describe() const;
};

// async-signal-safe: whether `fd` is an anonymous inode of this kind ("anon_inode:[perf_event]").
bool fd_is_kind(int fd, const char* kind);

}  // namespace periscope
