#include "profiler/fd_identity.h"

#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/proc_reader.h"

namespace periscope {

namespace {

// async-signal-safe: "self/fd/<fd>" without allocation.
void fd_link_path(int fd, char (&path)[32]) {
  char digits[16];
  int n = 0;
  unsigned value = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && n < 15);
  const char prefix[] = "self/fd/";
  std::memcpy(path, prefix, sizeof prefix - 1);
  size_t at = sizeof prefix - 1;
  while (n > 0) path[at++] = digits[--n];
  path[at] = '\0';
}

// async-signal-safe: the link text of an anonymous-inode descriptor into `kind`, else empty.
void read_kind(int fd, char (&kind)[48]) {
  kind[0] = '\0';
  char path[32];
  fd_link_path(fd, path);
  ssize_t n = ::readlinkat(proc::proc_dir_fd(), path, kind, sizeof kind - 1);
  if (n <= 0) return;
  kind[n] = '\0';
  if (std::strncmp(kind, "anon_inode:", 11) != 0) kind[0] = '\0';
}

}  // namespace

std::optional<FdIdentity> FdIdentity::of(int fd) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) return std::nullopt;
  FdIdentity id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  read_kind(fd, id.kind);
  if (id.anonymous()) {
    int mark = ::fcntl(fd, F_GETSIG);
    if (mark == 0 && ::fcntl(fd, F_SETSIG, kFdMarkSignal) == 0) mark = kFdMarkSignal;
    id.mark = mark > 0 ? mark : 0;
  }
  return id;
}

// async-signal-safe: fstat, fcntl, readlinkat, strcmp.
bool FdIdentity::still_at(int fd) const {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) return false;
  if (!anonymous()) return true;
  if (mark != 0 && ::fcntl(fd, F_GETSIG) != mark) return false;  // the mark travels with the description
  char now[48];
  read_kind(fd, now);
  return now[0] == '\0' ? true : std::strcmp(now, kind) == 0;  // unreadable /proc: dev and ino decide
}

// async-signal-safe: readlinkat and strcmp.
bool fd_is_kind(int fd, const char* kind) {
  char now[48];
  read_kind(fd, now);
  return std::strcmp(now, kind) == 0;
}

std::string FdIdentity::describe() const {
  if (anonymous()) return kind;
  return "inode " + std::to_string(ino) + " on device " + std::to_string(dev);
}

}  // namespace periscope
