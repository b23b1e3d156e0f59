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

// A fixed table, never reallocated: a fork child (which takes no lock, the parent's threads may
// have been mid-change) reads a slot's identity only after its fd was published, and every
// close checks the identity again, so a slot caught half-written is skipped, never misread.
//
// A closed descriptor stays in its slot as a tombstone until the slot is needed again: fork
// copies the descriptor table before the memory, so a child may hold a descriptor that its copy
// of this table already calls closed. The child closes tombstones too, where still ours.
constexpr size_t kMaxOwned = 1024;
struct Slot {
  std::atomic<int> fd{-1};
  std::atomic<bool> closed{false};
  FdIdentity identity;
};
size_t g_next_reuse = 0;  // guarded by the table lock: tombstones are reused in turn

Slot* slots() {
  static Slot* table = new Slot[kMaxOwned];  // leaked: fork children use it until the very end
  return table;
}

std::mutex*& table_mutex_ptr() {
  static std::mutex* m = new std::mutex;  // a fork child replaces it if some parent thread held it
  return m;
}
std::mutex& table_mutex() { return *table_mutex_ptr(); }

// False when the table is full (the caller closes the fd: we never keep what we cannot track).
void fill(Slot& slot, int fd, const FdIdentity& identity) {
  slot.fd.store(-1, std::memory_order_release);
  slot.identity = identity;
  slot.closed.store(false, std::memory_order_relaxed);
  slot.fd.store(fd, std::memory_order_release);
}

bool add_locked(int fd, const FdIdentity& identity) {
  for (size_t i = 0; i < kMaxOwned; ++i) {
    if (slots()[i].fd.load(std::memory_order_relaxed) < 0) return fill(slots()[i], fd, identity), true;
  }
  for (size_t n = 0; n < kMaxOwned; ++n) {
    Slot& slot = slots()[(g_next_reuse + n) % kMaxOwned];
    if (!slot.closed.load(std::memory_order_relaxed)) continue;
    g_next_reuse = (g_next_reuse + n + 1) % kMaxOwned;
    return fill(slot, fd, identity), true;
  }
  return false;
}

bool add_locked(int fd) {
  auto id = FdIdentity::of(fd);
  return id && add_locked(fd, *id);
}

// Live descriptors only (not tombstones), unless `tombstones_too`.
template <typename F>
void for_each_owned(F f, bool tombstones_too = false) {
  for (size_t i = 0; i < kMaxOwned; ++i) {
    Slot& slot = slots()[i];
    const int fd = slot.fd.load(std::memory_order_acquire);
    if (fd >= 0 && (tombstones_too || !slot.closed.load(std::memory_order_relaxed))) f(slot, fd);
  }
}

void clear(Slot& slot) {
  slot.fd.store(-1, std::memory_order_release);
  slot.closed.store(false, std::memory_order_relaxed);
}

}  // namespace

void track_fd(int fd) {
  std::lock_guard lock(table_mutex());
  (void)add_locked(fd);
}

int accept_tracked(int listen_fd) {
  std::lock_guard lock(table_mutex());
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0 && !add_locked(fd)) {
    ::close(fd);  // just accepted: certainly ours
    errno = EMFILE;
    return -1;
  }
  return fd;
}

void close_tracked(int fd) {
  std::lock_guard lock(table_mutex());
  for_each_owned([fd](Slot& slot, int owned) {
    if (owned != fd) return;
    if (slot.identity.still_at(fd)) ::close(fd);  // else the number is the host's now: never close it
    slot.closed.store(true, std::memory_order_release);
  });
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
    if (id && id->anonymous()) (void)add_locked(fd, *id);
  }
}

std::string first_lost_fd() {
  std::lock_guard lock(table_mutex());
  std::string lost;
  for_each_owned([&](Slot& slot, int fd) {
    if (lost.empty() && !slot.identity.still_at(fd)) {
      lost = "descriptor " + std::to_string(fd) + " (" + slot.identity.describe() + ")";
    }
  });
  return lost;
}

void release_all_tracked() {
  std::lock_guard lock(table_mutex());
  for_each_owned(
      [](Slot& slot, int fd) {
        if (!slot.closed.load() && slot.identity.still_at(fd)) ::close(fd);
        clear(slot);
      },
      true);
}

void close_fd_table_in_fork_child() {
  // A lock some parent thread held is held for good here: take a fresh one (reads first, so a
  // free lock costs the child no copied page).
  if (table_mutex().native_handle()->__data.__lock != 0) table_mutex_ptr() = new std::mutex;
  for_each_owned(
      [](Slot& slot, int fd) {
        if (slot.identity.still_at(fd)) ::close(fd);  // a tombstone still here is the parent's copy
        clear(slot);
      },
      true);
}

}  // namespace periscope::manhole
