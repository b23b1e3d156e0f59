#include "viewer/discovery.h"

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/socket_location.h"
#include "profiler/proc_reader.h"
#include "profiler/process_info.h"
#include "viewer/cli_errors.h"

namespace periscope::viewer {

namespace {

constexpr unsigned kSocketListening = 0x10000;  // __SO_ACCEPTCON in /proc/net/unix "Flags"

struct UnixSocket {
  unsigned long inode = 0;
  std::string path;
};

// Listening, or bound and about to listen: an agent is between bind() and listen() for a moment,
// and a viewer that looks then must find it (connect retries its refusal, client.cpp).
std::vector<UnixSocket> bound_unix_sockets() {
  std::vector<UnixSocket> out;
  auto text = proc::read_file("/proc/net/unix", 64 << 20);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string num, refcount, protocol, flags, type, state;
    unsigned long inode = 0;
    if (!(fields >> num >> refcount >> protocol >> flags >> type >> state >> inode)) continue;
    std::string path;
    std::getline(fields, path);
    path.erase(0, path.find_first_not_of(' '));
    if (path.empty() || path[0] != '/') continue;
    const bool listening = (std::strtoul(flags.c_str(), nullptr, 16) & kSocketListening) != 0;
    const bool unconnected = type == "0001" && state == "01";  // a bound stream socket, no peer yet
    if (!listening && !unconnected) continue;
    out.push_back({inode, path});
  }
  return out;
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }
std::string dir_name(const std::string& path) { return path.substr(0, path.rfind('/')); }

// nullopt when /proc/<pid>/fd cannot be read (another user's process).
std::optional<bool> process_holds_socket(pid_t pid, unsigned long inode) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return std::nullopt;
  const std::string wanted = "socket:[" + std::to_string(inode) + "]";
  bool found = false;
  char target[64];
  while (dirent* e = ::readdir(d)) {
    ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
    if (n > 0 && std::string_view(target, static_cast<size_t>(n)) == wanted) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

bool is_agent_socket(pid_t pid, const UnixSocket& socket) {
  if (!process_exists(pid)) return false;
  if (auto holds = process_holds_socket(pid, socket.inode)) return *holds;
  return base_name(dir_name(socket.path)).find("periscope") != std::string::npos;
}

bool is_socket_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

std::vector<AgentEndpoint> find_agents() {
  std::vector<AgentEndpoint> out;
  for (const auto& socket : bound_unix_sockets()) {
    auto pid = protocol::pid_from_socket_name(base_name(socket.path));
    if (pid && is_agent_socket(*pid, socket)) out.push_back({*pid, socket.path});
  }
  std::sort(out.begin(), out.end(), [](const AgentEndpoint& a, const AgentEndpoint& b) { return a.pid < b.pid; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const AgentEndpoint& a, const AgentEndpoint& b) { return a.pid == b.pid; }),
            out.end());
  return out;
}

std::optional<std::string> find_agent_socket(pid_t pid) {
  for (const auto& agent : find_agents()) {
    if (agent.pid == pid) return agent.socket_path;
  }
  // Another network namespace hides the socket from /proc/net/unix: try the usual places.
  std::vector<std::string> dirs{protocol::default_socket_dir()};
  struct stat st {};
  if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0) {
    dirs.push_back("/tmp/periscope-" + std::to_string(st.st_uid));
    dirs.push_back("/run/user/" + std::to_string(st.st_uid) + "/periscope");
  }
  for (const auto& dir : dirs) {
    std::string path = protocol::socket_path(dir, pid);
    if (is_socket_file(path)) return path;
  }
  return std::nullopt;
}

std::string require_agent_socket(pid_t pid) {
  if (pid <= 0) throw CliError(kExitUsage, "invalid PID " + std::to_string(pid));
  if (!process_exists(pid)) throw CliError(kExitNoProcess, "no process with PID " + std::to_string(pid));
  if (auto path = find_agent_socket(pid)) return *path;
  auto info = read_process_info(pid);
  std::string name = info ? " (" + info->name + ")" : "";
  throw CliError(kExitNoProcess, "process " + std::to_string(pid) + name +
                                     " has no periscope agent; load one now with 'periscope inject " +
                                     std::to_string(pid) + "' (or add --inject to this command), or start it "
                                     "with LD_PRELOAD=libperiscope.so");
}

}  // namespace periscope::viewer
