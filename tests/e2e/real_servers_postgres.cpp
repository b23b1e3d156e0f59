// PostgreSQL 15 in a fresh cluster: the postmaster forks its background processes and one
// backend per connection, each of which must carry a working agent. It refuses to run as root,
// so it runs as user postgres; `setpriv ... env LD_PRELOAD=...` preloads the agent into
// postgres alone, as an operator's `sudo -u postgres env LD_PRELOAD=...` would (neither setpriv
// nor env carries an agent, and the pid stays the postmaster's). Load: pgbench, connecting per
// transaction (-C).
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <pwd.h>
#include <stdexcept>
#include <unistd.h>

#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {

namespace {

const std::string kBin = "/usr/lib/postgresql/15/bin/";
const std::vector<std::string> kBackgroundRoles{"checkpointer", "background writer", "walwriter",
                                                "autovacuum launcher", "logical replication launcher"};

std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"});
  return argv;
}

void give_to_postgres(const std::string& path) {
  passwd* pw = ::getpwnam("postgres");
  if (!pw || ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("cannot give " + path + " to user postgres");
  }
}

// "postgres: checkpointer" -> "checkpointer"
std::string role_of(pid_t pid) {
  std::string cmdline = cmdline_of(pid);
  const std::string prefix = "postgres: ";
  return cmdline.rfind(prefix, 0) == 0 ? cmdline.substr(prefix.size()) : cmdline;
}

std::unique_ptr<Process> start_postmaster(const std::string& dir, const std::string& port, const SocketDir& sockets) {
  give_to_postgres(dir);
  // The agent in postgres' processes makes its sockets there, so the directory must be theirs.
  give_to_postgres(sockets.path());
  auto initdb = run(as_postgres({kBin + "initdb", "-D", dir + "/data", "-U", "postgres", "--auth=trust", "-N"}), {},
                    {}, static_cast<uid_t>(-1), 120s);
  if (initdb.exit_code != 0) throw std::runtime_error("initdb failed: " + initdb.out + initdb.err);
  std::vector<std::string> argv{"/usr/bin/env"};
  for (const auto& [key, value] : agent_env(sockets)) argv.push_back(key + "=" + value);
  argv.insert(argv.end(), {kBin + "postgres", "-D", dir + "/data", "-k", dir, "-p", port, "-c",
                           "listen_addresses=127.0.0.1"});
  return std::make_unique<Process>(as_postgres(argv), Env{});
}

class Postgres : public RealServer {
 public:
  explicit Postgres(const SocketDir& sockets)
      : port_(std::to_string(free_loopback_port())), postmaster_(start_postmaster(dir_.path(), port_, sockets)) {
    auto accepts = [&] { return run({kBin + "pg_isready", "-h", "127.0.0.1", "-p", port_, "-t", "2"}).exit_code == 0; };
    if (!wait_until(accepts, 60s)) {
      throw std::runtime_error("postgres does not accept connections" + log_tail());
    }
    // Up means every background process has been started.
    wait_until([&] {
      auto up = processes();
      for (const auto& role : kBackgroundRoles) {
        if (std::none_of(up.begin(), up.end(), [&](const ServerProcess& p) { return p.role == role; })) return false;
      }
      return true;
    }, 20s);
    auto init = pgbench({"-i", "-q"}, 120s);
    if (init.exit_code != 0) throw std::runtime_error("pgbench -i failed: " + init.out + init.err + log_tail());
  }

  std::string name() const override { return "postgres"; }

  std::vector<ServerProcess> processes() override {
    std::vector<ServerProcess> out{{postmaster_->pid(), "postmaster"}};
    if (stopped()) return out;
    for (pid_t child : children_of(postmaster_->pid())) out.push_back({child, role_of(child)});
    return out;
  }

  pid_t serving_pid() override { return postmaster_->pid(); }
  std::vector<std::string> hot_functions() const override { return {"Postgres", "ServerLoop", "Postmaster", "pg"}; }

  std::string load() override {
    auto r = pgbench({"-C", "-S", "-T", "3"}, 60s);
    // pgbench 15 reports "number of transactions actually processed: N" and "number of failed transactions: N (..%)".
    const std::string processed_label = "number of transactions actually processed: ";
    auto processed = r.out.find(processed_label);
    bool served = processed != std::string::npos && std::atol(r.out.c_str() + processed + processed_label.size()) > 0 &&
                  r.out.find("number of failed transactions: 0 ") != std::string::npos;
    if (r.exit_code == 0 && served) return {};
    return "pgbench -C -S -T 3 (exit code " + std::to_string(r.exit_code) + "):\n" + last_lines(r.out, 12) +
           last_lines(r.err, 8) + log_tail();
  }

  std::string shut_down() override {
    postmaster_->kill(SIGINT);  // "fast" shutdown, as pg_ctl stop -m fast sends
    auto status = postmaster_->wait(30s);
    return shutdown_verdict("postmaster", postmaster_->pid(), status, "30 s after SIGINT",
                            dir_.file("data/postmaster.pid"));
  }

  std::string log_tail() const override {
    return "\npostgres' log ends:\n" + last_lines(postmaster_->stderr_text(), 10);
  }

 private:
  RunResult pgbench(std::vector<std::string> args, std::chrono::milliseconds timeout) const {
    args.insert(args.begin(), {kBin + "pgbench", "-h", "127.0.0.1", "-p", port_, "-U", "postgres"});
    args.push_back("postgres");
    return run(args, {}, {}, static_cast<uid_t>(-1), timeout);
  }

  TempDir dir_;
  std::string port_;
  std::unique_ptr<Process> postmaster_;
};

}  // namespace

std::unique_ptr<RealServer> start_postgres(const SocketDir& sockets) { return std::make_unique<Postgres>(sockets); }

}  // namespace periscope::test
