// redis-server as a daemon (--daemonize yes): it forks away from its launcher and writes a
// pidfile, so the agent under test is the one the forked child got. Load: redis-benchmark.
#include <stdexcept>

#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {

namespace {

class Redis : public RealServer {
 public:
  explicit Redis(const SocketDir& sockets) : port_(std::to_string(free_loopback_port())) {
    daemon_.own(launch_daemon({"/usr/bin/redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", port_,
                               "--dir", dir_.path(), "--pidfile", pidfile(), "--logfile", dir_.file("redis.log"),
                               "--save", ""},
                              agent_env(sockets), pidfile(), "redis-server", [this] { return log_tail(); }));
    if (!wait_until([&] { return cli({"ping"}).out == "PONG\n"; }, 20s)) {
      throw std::runtime_error("redis-server does not answer PING" + log_tail());
    }
  }

  std::string name() const override { return "redis"; }
  std::vector<ServerProcess> processes() override { return {{daemon_.get(), "daemon"}}; }
  pid_t serving_pid() override { return daemon_.get(); }
  std::vector<std::string> hot_functions() const override { return {"Command", "process", "read"}; }

  std::string load() override {
    auto r = run({"/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", port_, "-q", "-n", "20000", "-t", "set,get"},
                 {}, {}, static_cast<uid_t>(-1), 60s);
    // -q prints one "SET: N requests per second" line per test, and errors in their own words.
    bool complete = r.out.find("SET: ") != std::string::npos && r.out.find("GET: ") != std::string::npos;
    bool errors = r.out.find("rror") != std::string::npos || r.err.find("rror") != std::string::npos;
    if (r.exit_code == 0 && complete && !errors) return {};
    return "redis-benchmark (exit code " + std::to_string(r.exit_code) + "): " + last_lines(r.out, 5) +
           last_lines(r.err, 5) + log_tail();
  }

  std::string shut_down() override {
    auto said = cli({"shutdown", "nosave"});
    auto status = wait_for_exit(daemon_.get(), 20s);
    auto why = shutdown_verdict("daemon", daemon_.get(), status,
                                "20 s after SHUTDOWN (redis-cli said: " + said.out + said.err + ")", pidfile());
    if (status) daemon_.release();
    return why;
  }

  std::string log_tail() const override {
    return "\nredis.log ends:\n" + last_lines(slurp(dir_.file("redis.log")), 8);
  }

 private:
  std::string pidfile() const { return dir_.file("redis.pid"); }
  RunResult cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", port_});
    return run(args, {}, {}, static_cast<uid_t>(-1), 20s);
  }

  TempDir dir_;
  std::string port_;
  OwnedPid daemon_;
};

}  // namespace

std::unique_ptr<RealServer> start_redis(const SocketDir& sockets) { return std::make_unique<Redis>(sockets); }

}  // namespace periscope::test
