// Round-trip latency of manhole commands: the agent started in this process, a client on a Unix
// socket sends a command and waits for the whole reply. Run:
//   build/bench/manhole_roundtrip --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "periscope/periscope.h"

namespace {

class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
    read_until("periscope> ");
  }
  ~Client() { ::close(fd_); }
  void json_mode() {
    send("mode json\n");
    read_until("}\n");
  }
  void send(const std::string& s) { (void)!::send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }
  void read_until(const std::string& marker) {
    for (;;) {
      auto pos = buffer_.find(marker);
      if (pos != std::string::npos) {
        buffer_.erase(0, pos + marker.size());
        return;
      }
      char chunk[65536];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) throw std::runtime_error("connection closed");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

std::string start_agent() {
  static std::string path = [] {
    char tmpl[] = "/tmp/periscope-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    periscope::Options options;
    options.socket_dir = tmpl;
    if (auto s = periscope::start(options); !s.ok()) throw std::runtime_error(s.message());
    return periscope::socket_path();
  }();
  return path;
}

void BM_HelpRoundTripText(benchmark::State& state) {
  Client c(start_agent());
  for (auto _ : state) {
    c.send("help\n");
    c.read_until("periscope> ");
  }
}
BENCHMARK(BM_HelpRoundTripText)->UseRealTime();

void BM_HelpRoundTripJson(benchmark::State& state) {
  Client c(start_agent());
  c.json_mode();
  for (auto _ : state) {
    c.send("help\n");
    c.read_until("}\n");
  }
}
BENCHMARK(BM_HelpRoundTripJson)->UseRealTime();

void BM_ConnectAndHelp(benchmark::State& state) {
  const std::string path = start_agent();
  for (auto _ : state) {
    Client c(path);
    c.send("help\n");
    c.read_until("periscope> ");
  }
}
BENCHMARK(BM_ConnectAndHelp)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
