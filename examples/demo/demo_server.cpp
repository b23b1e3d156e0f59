// demo_server: a small HTTP server (Boost.Beast) whose endpoints cost different things, so there
// is something to look at with periscope. README, tests and benchmarks all use it.
//
//   GET /            the endpoints
//   GET /fast        answers at once
//   GET /cpu?ms=N    burns N ms of CPU in find_primes() (default 200)
//   GET /sleep?ms=N  sleeps N ms (default 300)
//   GET /stuck?pct=P P% of requests (default 20) wait 5 s on a lock; the rest answer at once
//
// Every request is a periscope::Request named by its route, so `periscope slow PID` shows where
// slow ones were caught and `periscope inflight PID` what runs now. It also counts its responses
// by route in periscope::registry(), served at the agent's /metrics beside the agent's own.
//
// Usage: demo_server [--port N (0 = any free port)] [--threads N]
// It prints "demo_server listening on http://127.0.0.1:PORT" once it accepts connections (and,
// with PERISCOPE_HTTP set, where the agent's /metrics is).
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <pthread.h>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "periscope/periscope.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<uint64_t> g_requests{0};
std::mutex g_log_level_mutex;
std::string g_log_level = "info";
std::mutex g_stuck_lock;

std::string log_level() {
  std::lock_guard lock(g_log_level_mutex);
  return g_log_level;
}

void set_log_level(const std::string& level) {
  static const char* const kLevels[] = {"debug", "info", "warn", "error"};
  for (const char* l : kLevels) {
    if (level == l) {
      std::lock_guard lock(g_log_level_mutex);
      g_log_level = level;
      return;
    }
  }
  throw std::invalid_argument("expected one of debug, info, warn, error");
}

int query_int(const std::string& target, const std::string& key, int fallback) {
  auto pos = target.find(key + "=");
  if (pos == std::string::npos) return fallback;
  return std::atoi(target.c_str() + pos + key.size() + 1);
}

// Burns CPU for `ms` milliseconds doing real work (trial division).
__attribute__((noinline)) uint64_t find_primes(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  uint64_t found = 0;
  for (uint64_t n = 3; std::chrono::steady_clock::now() < until; n += 2) {
    bool prime = true;
    for (uint64_t d = 3; d * d <= n; d += 2) {
      if (n % d == 0) {
        prime = false;
        break;
      }
    }
    found += prime;
  }
  return found;
}

__attribute__((noinline)) void wait_on_stuck_lock() {
  std::unique_lock lock(g_stuck_lock, std::defer_lock);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// The route a path belongs to: a bounded set of request names for the watchdog and metrics
// (never the raw URL, which would be unbounded).
const char* route_of(const std::string& path) {
  for (const char* route : {"/fast", "/cpu", "/sleep", "/stuck", "/"}) {
    if (path == route) return route;
  }
  return "not_found";
}

// The application's own metric, in the registry the agent serves.
prometheus::Family<prometheus::Counter>& responses_family() {
  static auto& family = prometheus::BuildCounter()
                            .Name("demo_responses_total")
                            .Help("Responses of the demo server, by route.")
                            .Register(*periscope::registry());
  return family;
}

void count_response(const char* route) {
  thread_local std::map<std::string, prometheus::Counter*> counters;  // Add() takes a lock: once per route
  auto& counter = counters[route];
  if (!counter) counter = &responses_family().Add({{"route", route}});
  counter->Increment();
}

std::string handle(const std::string& target) {
  ++g_requests;
  std::string path = target.substr(0, target.find('?'));
  // Watched by periscope's slow-request watchdog: `periscope slow PID` shows the stacks of
  // requests that outlive PERISCOPE_SLOW_MS (see also set_slow_threshold in main).
  periscope::Request request(route_of(path), g_requests.load());
  count_response(route_of(path));
  if (path == "/fast") return "ok\n";
  if (path == "/cpu") return "primes: " + std::to_string(find_primes(query_int(target, "ms", 200))) + "\n";
  if (path == "/sleep") {
    std::this_thread::sleep_for(std::chrono::milliseconds(query_int(target, "ms", 300)));
    return "slept\n";
  }
  if (path == "/stuck") {
    thread_local std::mt19937 rng{std::random_device{}()};
    if (static_cast<int>(rng() % 100) < query_int(target, "pct", 20)) {
      wait_on_stuck_lock();
      return "was stuck for 5 s\n";
    }
    return "not stuck this time\n";
  }
  if (path == "/") return "endpoints: /fast /cpu?ms=N /sleep?ms=N /stuck?pct=P\n";
  return {};
}

void serve_connection(tcp::socket socket) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  for (;;) {
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    std::string body = handle(std::string(req.target()));
    http::response<http::string_body> res{body.empty() ? http::status::not_found : http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = body.empty() ? "not found\n" : body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(socket, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

// A fixed pool of named worker threads, each serving one connection at a time.
class WorkerPool {
 public:
  explicit WorkerPool(int n) {
    for (int i = 0; i < n; ++i) {
      workers_.emplace_back([this, i] {
        pthread_setname_np(pthread_self(), ("demo-worker-" + std::to_string(i)).c_str());
        run();
      });
    }
  }
  void submit(tcp::socket s) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(s));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return !queue_.empty(); });
      tcp::socket s = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      serve_connection(std::move(s));
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<tcp::socket> queue_;
  std::vector<std::thread> workers_;
};

void register_with_periscope() {
  periscope::Status s = periscope::add_variable("log_level", log_level, set_log_level,
                                                "server log level: debug, info, warn or error");
  if (s.ok()) {
    s = periscope::add_variable("requests_total", [] { return std::to_string(g_requests.load()); }, {},
                                "requests served since start");
  }
  if (s.ok()) {
    s = periscope::add_command("burn", "[MS]", "burn CPU for MS ms (default 100), on a thread of the agent's",
                               [](const std::vector<std::string>& args) {
                                 int ms = args.empty() ? 100 : std::stoi(args[0]);
                                 if (ms < 0 || ms > 10000) throw std::out_of_range("MS must be 0..10000");
                                 return "primes: " + std::to_string(find_primes(ms)) + "\n";
                               });
  }
  if (!s.ok()) std::fprintf(stderr, "demo_server: periscope registration failed: %s\n", s.message().c_str());
  if (s.ok()) s = periscope::set_slow_threshold("/fast", std::chrono::milliseconds(50));
  s = periscope::start();
  if (!s.ok()) std::fprintf(stderr, "demo_server: periscope agent not started: %s\n", s.message().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8080;
  int threads = 4;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: demo_server [--port N] [--threads N]\n");
      return 2;
    }
  }
  register_with_periscope();
  try {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    WorkerPool pool(threads);
    std::string admin = periscope::http_endpoint();
    std::printf("demo_server listening on http://127.0.0.1:%u (pid %d)%s\n", acceptor.local_endpoint().port(),
                static_cast<int>(getpid()), admin.empty() ? "" : ("; metrics on http://" + admin + "/metrics").c_str());
    std::fflush(stdout);
    for (;;) pool.submit(acceptor.accept());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_server: %s\n", e.what());
    return 1;
  }
}
