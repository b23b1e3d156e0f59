// What fork costs the host: run once without and once with the agent preloaded
// (bench/fork_cost.sh compares them and prints the ratios).
//   fork_cost exit N     N times: fork, the child _exits at once, the parent waits; prints the
//                        median microseconds per round
//   fork_cost serve N    a fork-per-connection server on loopback (like PostgreSQL): a client
//                        thread connects N times one after another, each child answers one line
//                        and exits; prints the median microseconds per connection
// After the microseconds: the page faults per round, parent and children (getrusage): what a
// fork copies and faults in is most of its cost, and unlike time it does not vary from run to run.
// FORK_COST_CHILD_THREAD=1 (no agent): each child starts one thread as the agent's fork handler
// does (detached, every signal blocked, on a static stack, sleeping 50 ms), and nothing else: the
// floor of any agent that starts a fork child's agent on a thread of the child.
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <pthread.h>
#include <csignal>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

bool g_child_thread = false;
alignas(64) char g_child_thread_stack[128 * 1024];

void* sleep_50ms(void*) {
  ::usleep(50 * 1000);
  return nullptr;
}

// In a fork child: what the agent's fork handler costs at the least (see the top).
void start_thread_in_child() {
  if (!g_child_thread) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstack(&attr, g_child_thread_stack, sizeof g_child_thread_stack);
  pthread_t thread;
  if (pthread_create(&thread, &attr, sleep_50ms, nullptr) != 0) std::abort();
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

double median_us(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

double fork_and_exit(int rounds) {
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {
    auto start = Clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      start_thread_in_child();
      _exit(0);
    }
    waitpid(pid, nullptr, 0);
    us.push_back(micros_since(start));
  }
  return median_us(us);
}

int listen_loopback(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

void serve_forever(int listen_fd) {
  for (;;) {
    int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      start_thread_in_child();
      char buf[64];
      if (read(c, buf, sizeof buf) > 0) (void)!write(c, "ok\n", 3);
      _exit(0);
    }
    close(c);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }
}

double connections(int rounds) {
  uint16_t port = 0;
  int listen_fd = listen_loopback(&port);
  std::thread(serve_forever, listen_fd).detach();
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {
    auto start = Clock::now();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char buf[8];
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || write(fd, "q\n", 2) != 2 ||
        read(fd, buf, sizeof buf) <= 0) {
      std::perror("client");
      std::exit(1);
    }
    close(fd);
    us.push_back(micros_since(start));
  }
  return median_us(us);
}

// Minor page faults so far: this process's and its waited-for children's.
long minor_faults() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return self.ru_minflt + children.ru_minflt;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fork_cost exit|serve ROUNDS\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int rounds = std::atoi(argv[2]);
  if (rounds <= 0 || (mode != "exit" && mode != "serve")) return 2;
  const char* child_thread = std::getenv("FORK_COST_CHILD_THREAD");
  g_child_thread = child_thread && std::string(child_thread) == "1";
  // A host has threads of its own (the agent has one): so does this one, like a real server.
  std::thread([] { for (;;) std::this_thread::sleep_for(std::chrono::seconds(1)); }).detach();
  const long faults_before = minor_faults();
  const double us = mode == "exit" ? fork_and_exit(rounds) : connections(rounds);
  std::printf("%.1f %.1f\n", us, static_cast<double>(minor_faults() - faults_before) / rounds);
  return 0;
}
