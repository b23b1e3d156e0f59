// Real Debian servers (redis, nginx, postgresql, memcached) started with the agent preloaded the
// way an operator would start them: as root (they drop privileges themselves, or are started as
// their own user), each on a free loopback port with its files in a temporary directory, and
// stopped at the end. One file per server (real_servers_<name>.cpp); the checks a user makes
// against them are in server_checks.h.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "tests/e2e/harness.h"

namespace periscope::test {

// One process of a server and what it does there ("daemon", "master", "worker", "checkpointer").
struct ServerProcess {
  pid_t pid = 0;
  std::string role;
};

// A running server. Methods are called from the test's thread, except load(), which may also
// run on a thread of its own beside them.
class RealServer {
 public:
  virtual ~RealServer() = default;  // kills whatever still runs (a test that failed midway)
  virtual std::string name() const = 0;
  // Every process of the server now, each of which `periscope ps` must list.
  virtual std::vector<ServerProcess> processes() = 0;
  // The process that does the serving: profiled under load and watched for leaks.
  virtual pid_t serving_pid() = 0;
  // Substrings one of which names a hot function of serving_pid() under load.
  virtual std::vector<std::string> hot_functions() const = 0;
  // One bounded round of client traffic. What went wrong, or empty when all of it was served.
  virtual std::string load() = 0;
  // Stops the server as its operator would (shut_down(), once). Why that was not clean, with the
  // log's tail, or empty.
  std::string stop();
  bool stopped() const { return stopped_; }
  // The last lines of the server's own log (where the agent's one-line complaints land too).
  virtual std::string log_tail() const = 0;

 protected:
  virtual std::string shut_down() = 0;  // why the shutdown was not clean, or empty

 private:
  bool stopped_ = false;
  std::string stop_result_;
};

// Runs `argv`, a launcher that daemonizes (it must exit 0), and returns the daemon's pid once
// `pidfile` names it. Throws std::runtime_error naming `what`, with `log_tail()`, when it does not.
pid_t launch_daemon(const std::vector<std::string>& argv, const Env& env, const std::string& pidfile,
                    const std::string& what, const std::function<std::string()>& log_tail);
// Why a server's main process (`role`, `pid`) did not end cleanly once asked `how`: it still runs
// (`status` nullopt), it ended with a non-zero status, or it left `leftover` (its pidfile) behind.
// Empty when it ended cleanly.
std::string shutdown_verdict(const std::string& role, pid_t pid, std::optional<int> status, const std::string& how,
                             const std::string& leftover);

// The servers this suite knows, by name.
std::vector<std::string> real_server_names();
// Why `name` cannot run on this machine (not installed, not root), or empty.
std::string why_real_server_cannot_run(const std::string& name);
// Starts `name` with the agent preloaded (or, `preload_agent` false, without it: for `periscope
// inject`) and its sockets in `sockets`, and waits until it serves. Throws std::runtime_error,
// with the server's own words, when it does not come up.
std::unique_ptr<RealServer> start_real_server(const std::string& name, const SocketDir& sockets,
                                              bool preload_agent = true);

// What every server's environment gets: LD_PRELOAD=<agent> (empty without the agent) and
// PERISCOPE_SOCKET_DIR=<sockets>.
Env agent_env(const SocketDir& sockets);

// One per server, in real_servers_<name>.cpp.
std::unique_ptr<RealServer> start_redis(const SocketDir& sockets);
std::unique_ptr<RealServer> start_nginx(const SocketDir& sockets);
std::unique_ptr<RealServer> start_postgres(const SocketDir& sockets);
std::unique_ptr<RealServer> start_memcached(const SocketDir& sockets);

}  // namespace periscope::test
