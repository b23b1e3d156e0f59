#include "manhole/owned_fds.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/fd_identity.h"
#include "profiler/proc_reader.h"

namespace periscope::manhole {

namespace {

struct Owned {
  int fd;
  FdIdentity identity;
};

// Pointers, leaked: a fork child replaces them rather than trust a lock some parent thread held.
std::mutex*& table_mutex_ptr() {
  static std::mutex* m = new std::mutex;
  return m;
}
std::mutex& table_mutex() { return *table_mutex_ptr(); }

std::vector<Owned>*& table_ptr() {
  static std::vector<Owned>* fds = new std::vector<Owned>;
  return fds;
}
std::vector<Owned>& table() { return *table_ptr(); }

std::atomic<unsigned> g_generation{0};  // odd while the table changes

// Marks a change of the table for a fork child that may copy it midway (table lock held).
struct Changing {
  Changing() { g_generation.fetch_add(1, std::memory_order_acq_rel); }
  ~Changing() { g_generation.fetch_add(1, std::memory_order_acq_rel); }
};

void add_locked(int fd) {
  if (auto id = FdIdentity::of(fd)) {
    Changing changing;
    table().push_back({fd, *id});
  }
}

}  // namespace

void track_fd(int fd) {
  std::lock_guard lock(table_mutex());
  add_locked(fd);
}

int accept_tracked(int listen_fd) {
  std::lock_guard lock(table_mutex());
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) add_locked(fd);
  return fd;
}

void close_tracked(int fd) {
  std::lock_guard lock(table_mutex());
  auto& fds = table();
  auto it = std::find_if(fds.begin(), fds.end(), [fd](const Owned& o) { return o.fd == fd; });
  if (it == fds.end()) return;  // not ours (any more): never close a number we do not own
  Changing changing;
  if (it->identity.still_at(fd)) ::close(fd);
  fds.erase(it);
}

std::vector<int> open_fd_numbers() {
  std::vector<int> fds;
  const int dir_fd = proc::open_path("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  DIR* dir = dir_fd >= 0 ? ::fdopendir(dir_fd) : nullptr;
  if (!dir) {
    if (dir_fd >= 0) ::close(dir_fd);
    return fds;
  }
  const int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && fd != own) fds.push_back(static_cast<int>(fd));
  }
  ::closedir(dir);
  return fds;
}

void track_new_anonymous_fds(const std::vector<int>& before, const std::vector<int>& after) {
  std::lock_guard lock(table_mutex());
  for (int fd : after) {
    if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
    auto id = FdIdentity::of(fd);
    Changing changing;
    if (id && id->anonymous()) table().push_back({fd, *id});
  }
}

std::string first_lost_fd() {
  std::lock_guard lock(table_mutex());
  for (const auto& o : table()) {
    if (!o.identity.still_at(o.fd)) return "descriptor " + std::to_string(o.fd) + " (" + o.identity.describe() + ")";
  }
  return {};
}

void release_all_tracked() {
  std::lock_guard lock(table_mutex());
  Changing changing;
  for (const auto& o : table()) {
    if (o.identity.still_at(o.fd)) ::close(o.fd);
  }
  table().clear();
}

void close_fd_table_in_fork_child() {
  if ((g_generation.load(std::memory_order_acquire) & 1) == 0) {
    for (const auto& o : table()) {
      if (o.identity.still_at(o.fd)) ::close(o.fd);
    }
  }
  table_ptr() = new std::vector<Owned>;  // the parent's copy, whole or not, is left alone
  table_mutex_ptr() = new std::mutex;
  g_generation.store(0);
}

}  // namespace periscope::manhole
