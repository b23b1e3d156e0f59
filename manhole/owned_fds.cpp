#include "manhole/owned_fds.h"

#include <algorithm>
#include <mutex>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace periscope::manhole {

namespace {

std::mutex& table_mutex() {
  static auto* m = new std::mutex;  // leaked: used by atfork handlers until the very end
  return *m;
}

std::vector<int>& table() {
  static auto* fds = new std::vector<int>;
  return *fds;
}

}  // namespace

void track_fd(int fd) {
  std::lock_guard lock(table_mutex());
  table().push_back(fd);
}

int accept_tracked(int listen_fd) {
  std::lock_guard lock(table_mutex());
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) table().push_back(fd);
  return fd;
}

void close_tracked(int fd) {
  std::lock_guard lock(table_mutex());
  auto& fds = table();
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
  ::close(fd);
}

void lock_fd_table_for_fork() { table_mutex().lock(); }

void unlock_fd_table_in_fork_parent() { table_mutex().unlock(); }

void close_fd_table_in_fork_child() {
  for (int fd : table()) ::close(fd);
  table().clear();
  table_mutex().unlock();
}

}  // namespace periscope::manhole
