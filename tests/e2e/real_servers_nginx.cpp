// nginx as a daemon with a master and two workers: the master forks the workers, which drop to
// an unprivileged user (nobody/www-data) — every one must carry a working agent. Load: plain
// HTTP requests from a few client threads.
#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {

namespace {

constexpr int kWorkers = 2;

long cpu_ticks(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close_paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 of proc(5)
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return utime + stime;
}

class Nginx : public RealServer {
 public:
  explicit Nginx(const SocketDir& sockets) : address_("127.0.0.1:" + std::to_string(free_loopback_port())) {
    std::ofstream(dir_.file("nginx.conf"))
        << "daemon on; master_process on; worker_processes " << kWorkers << ";\n"
        << "pid " << pidfile() << "; error_log " << dir_.file("error.log") << ";\n"
        << "events {}\n"
        << "http { access_log off; server { listen " << address_ << "; location / { return 200 \"ok\\n\"; } } }\n";
    master_.own(launch_daemon({"/usr/sbin/nginx", "-c", dir_.file("nginx.conf"), "-p", dir_.path() + "/", "-e",
                               dir_.file("error.log")},
                              agent_env(sockets), pidfile(), "nginx", [this] { return log_tail(); }));
    if (!wait_until([&] { return workers().size() == kWorkers; }, 20s)) {
      throw std::runtime_error("nginx has " + std::to_string(workers().size()) + " workers, not " +
                               std::to_string(kWorkers) + log_tail());
    }
    if (!wait_until([&] { return http_request(address_, "GET", "/", 2s).status == 200; }, 20s)) {
      throw std::runtime_error("nginx does not answer on " + address_ + log_tail());
    }
  }

  // A master that died leaves its workers running, orphaned; they must not outlive the test.
  ~Nginx() override {
    for (pid_t worker : seen_workers_) {
      if (cmdline_of(worker).find("nginx: worker") != std::string::npos) kill_and_reap(worker);
    }
  }

  std::string name() const override { return "nginx"; }

  std::vector<ServerProcess> processes() override {
    std::vector<ServerProcess> out{{master_.get(), "master"}};
    for (pid_t worker : workers()) out.push_back({worker, "worker"});
    return out;
  }

  // The worker that has served most so far: which one accepts a connection is the kernel's choice.
  pid_t serving_pid() override {
    pid_t busiest = 0;
    for (pid_t worker : workers()) {
      if (busiest == 0 || cpu_ticks(worker) > cpu_ticks(busiest)) busiest = worker;
    }
    return busiest;
  }

  std::vector<std::string> hot_functions() const override { return {"ngx_"}; }

  std::string load() override {
    constexpr int kClients = 4, kRequestsEach = 250;
    std::atomic<int> failed{0};
    std::string first_failure;
    std::mutex mutex;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&] {
        for (int i = 0; i < kRequestsEach; ++i) {
          auto r = http_request(address_, "GET", "/", 5s);
          if (r.status == 200 && r.body == "ok\n") continue;
          if (failed++ == 0) {
            std::lock_guard lock(mutex);
            first_failure = "status " + std::to_string(r.status) + ", body '" + r.body + "'";
          }
        }
      });
    }
    for (auto& c : clients) c.join();
    if (failed == 0) return {};
    return std::to_string(failed.load()) + " of " + std::to_string(kClients * kRequestsEach) +
           " requests failed; the first: " + first_failure + log_tail();
  }

  std::string shut_down() override {
    auto before = workers();
    ::kill(master_.get(), SIGQUIT);  // graceful shutdown, as `nginx -s quit` sends
    auto status = wait_for_exit(master_.get(), 20s);
    std::string why = shutdown_verdict("master", master_.get(), status, "20 s after SIGQUIT", pidfile());
    for (pid_t worker : before) {
      if (wait_for_exit(worker, 5s)) continue;
      why += "\nworker " + std::to_string(worker) + " still runs after the master's shutdown";
    }
    if (status) master_.release();
    return why;
  }

  std::string log_tail() const override {
    return "\nerror.log ends:\n" + last_lines(slurp(dir_.file("error.log")), 8);
  }

 private:
  // Never children_of(0): that is init and the kernel's threads.
  std::vector<pid_t> workers() {
    if (master_.get() <= 0) return {};
    auto now = children_of(master_.get());
    seen_workers_.insert(now.begin(), now.end());
    return now;
  }
  std::string pidfile() const { return dir_.file("nginx.pid"); }

  TempDir dir_;
  std::string address_;
  OwnedPid master_;
  std::set<pid_t> seen_workers_;
};

}  // namespace

std::unique_ptr<RealServer> start_nginx(const SocketDir& sockets) { return std::make_unique<Nginx>(sockets); }

}  // namespace periscope::test
