#include "protocol/socket_location.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace periscope::protocol {

namespace {

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::string mkdir_parents(const std::string& dir) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create " + prefix + ": " + std::strerror(errno);
    }
  }
  return {};
}

}  // namespace

std::string default_socket_dir() {
  if (const char* d = std::getenv("PERISCOPE_SOCKET_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/periscope";
  return "/tmp/periscope-" + std::to_string(::geteuid());
}

std::string socket_path(const std::string& dir, pid_t pid) {
  return dir + "/" + std::to_string(pid) + ".sock";
}

namespace {

std::optional<pid_t> pid_from_name(std::string_view name, std::string_view suffix) {
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return std::nullopt;
  auto digits = name.substr(0, name.size() - suffix.size());
  if (digits.size() > 9) return std::nullopt;
  pid_t pid = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    pid = pid * 10 + (c - '0');
  }
  if (pid <= 0) return std::nullopt;
  return pid;
}

}  // namespace

std::optional<pid_t> pid_from_socket_name(std::string_view name) { return pid_from_name(name, ".sock"); }

namespace {
// "<dir>/<pid>.sock" -> "<dir>/<pid><suffix>": the files that belong to a socket.
std::string beside_socket(const std::string& socket_path, const char* suffix) {
  std::string path = socket_path;
  if (path.ends_with(".sock")) path.resize(path.size() - 5);
  return path + suffix;
}
}  // namespace

std::string http_address_file(const std::string& socket_path) { return beside_socket(socket_path, ".http"); }

std::string http_token_file(const std::string& socket_path) { return beside_socket(socket_path, ".token"); }

std::string prepare_socket_dir(const std::string& dir) {
  if (dir.empty() || dir.front() != '/') return "socket directory must be an absolute path: '" + dir + "'";
  if (auto err = mkdir_parents(dir); !err.empty()) return err;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return "cannot stat " + dir + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
  if (st.st_uid != ::geteuid()) {
    return dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to us (uid " +
           std::to_string(::geteuid()) + "); refusing to put a socket there";
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return "cannot make " + dir + " private (0700): " + std::strerror(errno);
  }
  return {};
}

int remove_stale_sockets(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = ::readdir(d)) {
    auto pid = pid_from_socket_name(e->d_name);
    if (!pid) pid = pid_from_name(e->d_name, ".http");
    if (!pid) pid = pid_from_name(e->d_name, ".token");
    if (!pid || pid_alive(*pid)) continue;
    if (::unlinkat(::dirfd(d), e->d_name, 0) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace periscope::protocol
