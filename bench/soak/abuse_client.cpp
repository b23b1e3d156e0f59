// Connection abuse against an agent, for bench/connection_abuse.sh. Three kinds of bad client at
// once, for SECONDS:
//   flood    every FLOOD_EVERY seconds, FLOOD connections opened at once (non-blocking, retried
//            while the listen backlog is full), each classified by what the agent says first
//            (a session banner, a refusal, nothing), held HOLD seconds, then closed;
//   slow     SLOW clients that send a command one byte a second (and reconnect when dropped);
//   hangup   HANGUPS a second: connect, send a command with a large or slow reply (stacks,
//            threads, profile dump, help, info), then close at once or after the first bytes of
//            the reply, half of them with a reset (SO_LINGER 0).
// The target is a Unix socket (the manhole: line commands) or a TCP address (the HTTP endpoint:
// GET requests); only the payloads differ.
//   abuse_client unix:PATH|tcp:HOST:PORT SECONDS(0: until SIGTERM) [--flood N] [--flood-every S] [--hold S] [--slow N] [--hangups N]
// Prints "key value" lines at the end.
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Target {
  bool http = false;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct Counters {
  std::atomic<long> flood_attempts{0}, flood_connected{0}, flood_backlog_retries{0}, flood_failed{0},
      flood_sessions{0}, flood_refused{0}, flood_silent{0}, slow_bytes{0}, slow_replies{0},
      slow_connects{0}, slow_refused{0}, hangups{0}, hangup_resets{0}, hangup_failed{0};
};
Counters g;
std::atomic<bool> g_stop{false};

bool parse_target(const std::string& spec, Target* t) {
  if (spec.rfind("unix:", 0) == 0) {
    auto* un = reinterpret_cast<sockaddr_un*>(&t->addr);
    std::string path = spec.substr(5);
    if (path.size() >= sizeof un->sun_path) return false;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    t->len = sizeof(sockaddr_un);
    return true;
  }
  if (spec.rfind("tcp:", 0) == 0) {
    std::string hostport = spec.substr(4);
    auto colon = hostport.rfind(':');
    if (colon == std::string::npos) return false;
    auto* in = reinterpret_cast<sockaddr_in*>(&t->addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(std::atoi(hostport.c_str() + colon + 1)));
    if (inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &in->sin_addr) != 1) return false;
    t->len = sizeof(sockaddr_in);
    t->http = true;
    return true;
  }
  return false;
}

// A non-blocking socket whose connect has been started; -1 if it failed at once. `busy` is set
// when the listen backlog was full (EAGAIN on Unix sockets).
int start_connect(const Target& t, bool* busy) {
  *busy = false;
  int fd = ::socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) == 0 || errno == EINPROGRESS) return fd;
  *busy = (errno == EAGAIN);
  ::close(fd);
  return -1;
}

// A connected socket, waiting up to `ms` for the connection (and retrying a full backlog).
int connect_within(const Target& t, int ms) {
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until && !g_stop) {
    bool busy = false;
    int fd = start_connect(t, &busy);
    if (fd >= 0) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      if (::poll(&p, 1, ms) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
      ::close(fd);
      return -1;
    }
    if (!busy) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

void close_with_reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

std::string drain(int fd) {  // whatever is readable now
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void sleep_ms(long ms) {
  for (long left = ms; left > 0 && !g_stop; left -= 50) std::this_thread::sleep_for(std::chrono::milliseconds(std::min(left, 50L)));
}

void flood_once(const Target& t, int count, double hold_s) {
  std::vector<int> fds;
  auto give_up = Clock::now() + std::chrono::seconds(3);
  for (int i = 0; i < count && !g_stop;) {
    ++g.flood_attempts;
    bool busy = false;
    int fd = start_connect(t, &busy);
    if (fd >= 0) {
      fds.push_back(fd);
      ++i;
    } else if (busy && Clock::now() < give_up) {
      --g.flood_attempts;
      ++g.flood_backlog_retries;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else {
      ++g.flood_failed;
      ++i;
    }
  }
  g.flood_connected += static_cast<long>(fds.size());
  // What did each get? Wait up to a second for first words.
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back({fd, POLLIN, 0});
  std::vector<bool> seen(fds.size(), false);
  auto until = Clock::now() + std::chrono::seconds(1);
  size_t classified = 0;
  while (classified < fds.size() && Clock::now() < until && !g_stop) {
    if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
    for (size_t i = 0; i < polls.size(); ++i) {
      if (seen[i] || !polls[i].revents) continue;
      seen[i] = true;
      ++classified;
      polls[i].events = 0;
      std::string first = drain(fds[i]);
      if (first.find("too many") != std::string::npos || first.find("503") != std::string::npos) ++g.flood_refused;
      else if (!first.empty()) ++g.flood_sessions;
      else ++g.flood_refused;  // closed without a word
    }
  }
  g.flood_silent += static_cast<long>(fds.size() - classified);
  sleep_ms(static_cast<long>(hold_s * 1000));
  for (int fd : fds) ::close(fd);
}

void flood(const Target& t, int count, double every_s, double hold_s) {
  while (!g_stop) {
    auto next = Clock::now() + std::chrono::milliseconds(static_cast<long>(every_s * 1000));
    flood_once(t, count, hold_s);
    while (Clock::now() < next && !g_stop) sleep_ms(50);
  }
}

void slow_client(const Target& t) {
  const std::string payload = t.http ? "GET /metrics HTTP/1.1\r\nHost: abuse\r\n\r\n" : "help\n";
  while (!g_stop) {
    int fd = connect_within(t, 1000);
    if (fd < 0) {
      sleep_ms(1000);
      continue;
    }
    ++g.slow_connects;
    bool alive = true;
    for (size_t i = 0; alive && !g_stop; i = (i + 1) % payload.size()) {
      if (::send(fd, &payload[i], 1, MSG_NOSIGNAL) != 1) break;
      ++g.slow_bytes;
      sleep_ms(1000);
      std::string got = drain(fd);
      if (got.find("too many") != std::string::npos) {
        ++g.slow_refused;
        alive = false;
      }
      if (i + 1 == payload.size() && !got.empty()) ++g.slow_replies;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) alive = false;
    }
    ::close(fd);
  }
}

void hangups(const Target& t, int per_second) {
  const std::vector<std::string> manhole = {"stacks\n", "threads\n", "profile dump\n", "help\n", "info\n"};
  const std::vector<std::string> http = {"GET /debug/stacks HTTP/1.1\r\nHost: a\r\n\r\n",
                                         "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
                                         "GET /debug/cmd/threads HTTP/1.1\r\nHost: a\r\n\r\n",
                                         "GET / HTTP/1.1\r\nHost: a\r\n\r\n"};
  const auto& requests = t.http ? http : manhole;
  const auto gap = std::chrono::microseconds(1000000 / std::max(per_second, 1));
  auto next = Clock::now();
  for (long n = 0; !g_stop; ++n) {
    next += gap;
    int fd = connect_within(t, 500);
    if (fd < 0) {
      ++g.hangup_failed;
    } else {
      const std::string& request = requests[static_cast<size_t>(n) % requests.size()];
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) ++g.hangup_failed;
      if (n % 3 == 1) {  // read the first bytes of the reply (for the manhole: the banner), then leave
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) == 1) {
          char buf[64];
          ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
          (void)r;
        }
      }
      if (n % 2 == 0) {
        close_with_reset(fd);
        ++g.hangup_resets;
      } else {
        ::close(fd);
      }
      ++g.hangups;
    }
    std::this_thread::sleep_until(next);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: abuse_client unix:PATH|tcp:HOST:PORT SECONDS [--flood N] [--flood-every S] [--hold S] "
                 "[--slow N] [--hangups N]\n");
    return 2;
  }
  Target target;
  if (!parse_target(argv[1], &target)) {
    std::fprintf(stderr, "abuse_client: bad target %s\n", argv[1]);
    return 2;
  }
  double seconds = std::atof(argv[2]);
  int flood_n = 1000, slow_n = 8, hangups_n = 20;
  double flood_every = 5, hold = 1;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    double v = std::atof(argv[i + 1]);
    if (f == "--flood") flood_n = static_cast<int>(v);
    else if (f == "--flood-every") flood_every = v;
    else if (f == "--hold") hold = v;
    else if (f == "--slow") slow_n = static_cast<int>(v);
    else if (f == "--hangups") hangups_n = static_cast<int>(v);
    else return 2;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });  // SECONDS 0: until SIGTERM
  std::signal(SIGINT, [](int) { g_stop = true; });
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < slow_n; ++i) threads.emplace_back(slow_client, std::cref(target));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the slow ones take their seats first
  std::printf("started\n");
  std::fflush(stdout);
  if (flood_n > 0) threads.emplace_back(flood, std::cref(target), flood_n, flood_every, hold);
  if (hangups_n > 0) threads.emplace_back(hangups, std::cref(target), hangups_n);
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  while (!g_stop && (seconds <= 0 || Clock::now() < end)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  g_stop = true;
  for (auto& t : threads) t.join();
  std::printf("flood_attempts %ld\nflood_connected %ld\nflood_backlog_retries %ld\nflood_failed %ld\n"
              "flood_sessions %ld\nflood_refused %ld\nflood_silent %ld\n",
              g.flood_attempts.load(), g.flood_connected.load(), g.flood_backlog_retries.load(), g.flood_failed.load(),
              g.flood_sessions.load(), g.flood_refused.load(), g.flood_silent.load());
  std::printf("slow_connects %ld\nslow_bytes %ld\nslow_replies %ld\nslow_refused %ld\n", g.slow_connects.load(),
              g.slow_bytes.load(), g.slow_replies.load(), g.slow_refused.load());
  std::printf("hangups %ld\nhangup_resets %ld\nhangup_failed %ld\n", g.hangups.load(), g.hangup_resets.load(),
              g.hangup_failed.load());
  return 0;
}
