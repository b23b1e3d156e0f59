#include "viewer/client.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "profiler/process_info.h"
#include "protocol/protocol.h"
#include "viewer/cli_errors.h"
#include "viewer/discovery.h"

namespace periscope::viewer {

namespace {

constexpr size_t kMaxReplyBytes = size_t{1} << 30;

std::string owner_hint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return " (it belongs to uid " + std::to_string(st.st_uid) + "; run periscope as that user or as root)";
}

int connect_socket(const std::string& path, pid_t pid) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw CliError(kExitConnection, "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw CliError(kExitConnection, std::string("socket: ") + std::strerror(errno));
  // An agent that is starting has bound its socket and listens a moment later: a refusal is
  // asked again for up to 0.5 s before the socket is called stale.
  int err = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    err = errno;
    if (err != ECONNREFUSED || !process_exists(pid)) break;
    ::usleep(10 * 1000);
  }
  ::close(fd);
  const std::string who = "process " + std::to_string(pid);
  if (err == EACCES || err == EPERM) {
    throw CliError(kExitPermission, "permission denied connecting to " + who + " at " + path + owner_hint(path));
  }
  if (err == ECONNREFUSED || err == ENOENT) {
    throw CliError(kExitNoProcess, who + " has no running agent (stale socket " + path + ")");
  }
  throw CliError(kExitConnection, "cannot connect to " + who + " at " + path + ": " + std::strerror(err));
}

}  // namespace

Client Client::connect_to_pid(pid_t pid, std::chrono::milliseconds timeout) {
  return connect_to_path(require_agent_socket(pid), pid, timeout);
}

Client Client::connect_to_path(const std::string& path, pid_t pid, std::chrono::milliseconds timeout) {
  Client client(connect_socket(path, pid), pid, timeout);
  // A refusing agent may close before our first line arrives: its reason is still ours to read.
  const std::string switch_mode = std::string(protocol::kJsonModeCommand) + "\n";
  (void)::send(client.fd_, switch_mode.data(), switch_mode.size(), MSG_NOSIGNAL);
  // The banner and prompt come first (text mode); the agent then answers with the hello frame.
  // Anything that starts with "error: " is the agent refusing us (uid, too many connections).
  for (;;) {
    std::string line = client.read_line();
    auto first = line.find_first_not_of(' ');
    if (line.compare(0, 7, "error: ") == 0) {
      bool denied = line.find("permission denied") != std::string::npos;
      throw CliError(denied ? kExitPermission : kExitConnection,
                     "process " + std::to_string(pid) + " refused the connection: " + line.substr(7));
    }
    if (first == std::string::npos || line[first] != '{') continue;
    auto frame = nlohmann::json::parse(line.substr(first), nullptr, false);
    if (!frame.is_discarded() && frame.value("command", "") == "mode" && frame.contains("data")) {
      client.hello_ = frame["data"];
      return client;
    }
  }
}

Client::Client(Client&& other) noexcept
    : fd_(other.fd_), pid_(other.pid_), timeout_(other.timeout_), buffer_(std::move(other.buffer_)),
      hello_(std::move(other.hello_)) {
  other.fd_ = -1;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

void Client::send_all(const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw CliError(kExitConnection, "connection to process " + std::to_string(pid_) +
                                          " lost while sending: " + std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
}

std::string Client::read_line() {
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (buffer_.size() > kMaxReplyBytes) throw CliError(kExitConnection, "reply larger than 1 GiB; giving up");
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      throw CliError(kExitConnection, "process " + std::to_string(pid_) + " did not answer within " +
                                          std::to_string(std::chrono::duration<double>(timeout_).count()).substr(0, 4) + " s");
    }
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string partial = buffer_;
      buffer_.clear();
      if (partial.compare(0, 7, "error: ") == 0) return partial;  // last words without a newline
      throw CliError(kExitConnection, "process " + std::to_string(pid_) + " closed the connection" +
                                          (n < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

nlohmann::json Client::call(const std::vector<std::string>& words) {
  send_all(protocol::encode_request(words));
  for (;;) {
    std::string line = read_line();
    if (line.empty()) continue;
    auto frame = nlohmann::json::parse(line, nullptr, false);
    if (frame.is_discarded() || !frame.is_object()) {
      if (line.compare(0, 7, "error: ") == 0) return {{"ok", false}, {"error", line.substr(7)}};
      throw CliError(kExitConnection, "malformed reply from process " + std::to_string(pid_));
    }
    return frame;
  }
}

nlohmann::json Client::call_checked(const std::vector<std::string>& words) {
  auto frame = call(words);
  if (!frame.value("ok", false)) {
    throw CliError(kExitCommandFailed, frame.value("error", (words.empty() ? "command" : words[0]) + " failed"));
  }
  return frame;
}

}  // namespace periscope::viewer
