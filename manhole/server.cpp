#include "manhole/server.h"

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "manhole/accept_loop.h"
#include "manhole/owned_fds.h"
#include "manhole/peer_credentials.h"

namespace periscope::manhole {

namespace asio = boost::asio;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io_context, const CommandRegistry& commands, ServerConfig server_config)
      : io(io_context), registry(commands), config(std::move(server_config)) {}

  asio::io_context& io;
  const CommandRegistry& registry;
  ServerConfig config;
  std::shared_ptr<AcceptLoop> accepting;
  bool stopped = false;
  std::list<std::weak_ptr<Session>> sessions;
  std::set<uid_t> logged_uids;  // each refused uid is logged once
  ServerCounters counters;

  void log(const std::string& line) {
    if (config.log) config.log(line);
  }

  void admit(int fd) {
    auto peer = peer_credentials(fd);
    std::string why = peer ? check_peer(*peer, ::geteuid()) : "permission denied: cannot read peer credentials";
    if (!why.empty()) {
      ++counters.refused_uid;
      send_last_words(fd, "error: " + why + "\n");
      close_tracked(fd);
      uid_t uid = peer ? peer->uid : static_cast<uid_t>(-1);
      if (logged_uids.size() < 64 && logged_uids.insert(uid).second) {
        log("refused manhole connection from pid " + std::to_string(peer ? peer->pid : 0) + ": " + why);
      }
      return;
    }
    if (counters.active.load() >= config.max_connections) {
      ++counters.refused_busy;
      send_last_words(fd, "error: too many connections (limit " + std::to_string(config.max_connections) +
                              "); try again later\n");
      close_tracked(fd);
      return;
    }
    ++counters.accepted;
    ++counters.active;
    sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
    auto weak_self = weak_from_this();
    sessions.push_back(start_session(io, fd, config.session, registry, [weak_self] {
      if (auto self = weak_self.lock()) --self->counters.active;
    }));
  }
};

Server::Server(asio::io_context& io, const CommandRegistry& registry, ServerConfig config)
    : impl_(std::make_shared<Impl>(io, registry, std::move(config))) {}

Server::~Server() = default;

const ServerCounters& Server::counters() const { return impl_->counters; }
const std::string& Server::socket_path() const { return impl_->config.socket_path; }

std::string Server::listen() {
  const std::string& path = impl_->config.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return "socket path too long (" + std::to_string(path.size()) + " bytes, limit " +
           std::to_string(sizeof addr.sun_path - 1) + "): " + path;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  ::unlink(path.c_str());  // ours from an earlier image of this pid (exec, pid reuse)
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string err = "bind " + path + ": " + std::strerror(errno);
    ::close(fd);
    return err;
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, 64) != 0) {
    std::string err = "listen " + path + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(path.c_str());
    return err;
  }
  impl_->accepting = AcceptLoop::start(impl_->io, fd, [weak = impl_->weak_from_this()](int connection) {
    if (auto self = weak.lock()) self->admit(connection);
    else close_tracked(connection);
  });
  return {};
}

void Server::stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  if (s.accepting) {
    s.accepting->stop();
    s.accepting.reset();
    ::unlink(s.config.socket_path.c_str());
  }
  for (auto& weak : s.sessions) {
    if (auto session = weak.lock()) session->close();
  }
  s.sessions.clear();
}

}  // namespace periscope::manhole
