// memcached in the foreground: one process, a thread per worker, dropping to user nobody after
// it has bound its port (-u). Load: set and get over memcached's text protocol, by hand (the
// protocol is three lines; no client library needed).
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {

namespace {

// One client's round of set/get pairs on one connection; what went wrong, or empty.
std::string set_get_round(const std::string& address, int client, int pairs) {
  RawConnection c = RawConnection::tcp(address);
  if (!c.connected()) return "cannot connect: " + std::string(std::strerror(c.connect_errno()));
  for (int i = 0; i < pairs; ++i) {
    std::string key = "k" + std::to_string(client) + "_" + std::to_string(i % 100);
    std::string value = "value-" + std::to_string(i);
    c.send("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n");
    std::string stored = c.read_until("\r\n");
    if (stored != "STORED\r\n") return "set " + key + " answered '" + stored + "'";
    c.send("get " + key + "\r\n");
    std::string got = c.read_until("END\r\n");
    if (got.find("\r\n" + value + "\r\n") == std::string::npos) return "get " + key + " answered '" + got + "'";
  }
  return {};
}

class Memcached : public RealServer {
 public:
  explicit Memcached(const SocketDir& sockets)
      : port_(std::to_string(free_loopback_port())),
        server_({"/usr/bin/memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", port_, "-U", "0"},
                agent_env(sockets)) {
    if (!wait_until([&] {
          RawConnection c = RawConnection::tcp(address());
          if (!c.connected()) return false;
          c.send("version\r\n");
          return c.read_until("\r\n", 2s).rfind("VERSION ", 0) == 0;
        }, 20s)) {
      throw std::runtime_error("memcached does not answer on " + address() + log_tail());
    }
  }

  std::string name() const override { return "memcached"; }
  std::vector<ServerProcess> processes() override { return {{server_.pid(), "memcached"}}; }
  pid_t serving_pid() override { return server_.pid(); }
  std::vector<std::string> hot_functions() const override { return {"worker", "event", "process_"}; }

  std::string load() override {
    constexpr int kClients = 2, kPairsEach = 2500;
    std::mutex mutex;
    std::string errors;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        std::string error = set_get_round(address(), c, kPairsEach);
        std::lock_guard lock(mutex);
        if (!error.empty()) errors += "client " + std::to_string(c) + ": " + error + "\n";
      });
    }
    for (auto& c : clients) c.join();
    return errors.empty() ? errors : errors + log_tail();
  }

  std::string shut_down() override {
    server_.kill(SIGTERM);  // what systemd and init scripts send
    auto status = server_.wait(20s);
    return status == 0 ? std::string() : "memcached ended with " + describe_exit(status) + " after SIGTERM";
  }

  std::string log_tail() const override {
    return "\nmemcached's stderr ends:\n" + last_lines(server_.stderr_text(), 8);
  }

 private:
  std::string address() const { return "127.0.0.1:" + port_; }

  std::string port_;
  Process server_;
};

}  // namespace

std::unique_ptr<RealServer> start_memcached(const SocketDir& sockets) { return std::make_unique<Memcached>(sockets); }

}  // namespace periscope::test
