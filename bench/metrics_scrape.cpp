// Time of one /metrics scrape with 10,000 series in the host's registry: periscope's endpoint
// (Beast on the agent's thread, prometheus-cpp's TextSerializer) side by side with prometheus-cpp's
// own Exposer (civetweb) serving the same registry, in one run, alternating scrapes. Each scrape
// is a fresh connection (GET, Connection: close, no gzip), timed from connect to the last byte.
//
// Usage: metrics_scrape [SCRAPES (default 200)]. Prints medians, p90s and the ratio.
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "periscope/periscope.h"

namespace {

// The body size of one scrape, or -1; the time goes to `us`.
long scrape(int port, double* us) {
  auto start = std::chrono::steady_clock::now();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  std::string response;
  char buf[1 << 16];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  *us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return -1;
  return static_cast<long>(response.size() - body - 4);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  const int scrapes = argc > 1 ? std::atoi(argv[1]) : 200;
  auto registry = periscope::registry();
  // 10,000 series: 50 counter and 50 gauge families of 100 label values each.
  for (int f = 0; f < 100; ++f) {
    const std::string name = "bench_family_" + std::to_string(f) + (f < 50 ? "_total" : "");
    for (int l = 0; l < 100; ++l) {
      if (f < 50) {
        auto& family = prometheus::BuildCounter().Name(name).Help("a counter family").Register(*registry);
        family.Add({{"shard", std::to_string(l)}, {"kind", "read"}}).Increment(l * 1.5);
      } else {
        auto& family = prometheus::BuildGauge().Name(name).Help("a gauge family").Register(*registry);
        family.Add({{"shard", std::to_string(l)}, {"kind", "queue"}}).Set(l * 0.25);
      }
    }
  }
  periscope::Options options = periscope::Options::from_env();
  options.http = "127.0.0.1:0";
  if (auto s = periscope::start(options); !s.ok()) {
    std::fprintf(stderr, "metrics_scrape: agent did not start: %s\n", s.message().c_str());
    return 1;
  }
  const std::string endpoint = periscope::http_endpoint();
  const int ours = std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str());
  prometheus::Exposer exposer("127.0.0.1:0");
  exposer.RegisterCollectable(registry);
  const int theirs = exposer.GetListeningPorts().at(0);

  std::vector<double> ours_us, theirs_us;
  long ours_bytes = 0, theirs_bytes = 0;
  for (int i = 0; i < scrapes + 10; ++i) {  // the first 10 of each warm up
    double a = 0, b = 0;
    long na = scrape(ours, &a), nb = scrape(theirs, &b);
    if (na < 0 || nb < 0) {
      std::fprintf(stderr, "metrics_scrape: a scrape failed (periscope %ld bytes, Exposer %ld)\n", na, nb);
      return 1;
    }
    if (i < 10) continue;
    ours_us.push_back(a);
    theirs_us.push_back(b);
    ours_bytes = na;
    theirs_bytes = nb;
  }
  double ours_median = quantile(ours_us, 0.5), theirs_median = quantile(theirs_us, 0.5);
  std::printf("scrape of 10,000 series, %d scrapes each, alternating:\n", scrapes);
  std::printf("  periscope /metrics      median %8.0f us  p90 %8.0f us  (%ld bytes; + process and agent metrics)\n",
              ours_median, quantile(ours_us, 0.9), ours_bytes);
  std::printf("  prometheus-cpp Exposer  median %8.0f us  p90 %8.0f us  (%ld bytes)\n", theirs_median,
              quantile(theirs_us, 0.9), theirs_bytes);
  std::printf("scrape_ratio %.2f (periscope time / Exposer time; below 1 is faster)\n", ours_median / theirs_median);
  periscope::stop();
  return 0;
}
