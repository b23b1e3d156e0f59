// An unmodified host for end-to-end tests: it knows nothing about periscope (the agent comes in
// by LD_PRELOAD). It names a worker thread "sleepy-worker", prints "ready <pid>", then obeys
// commands on stdin, one per line, answering on stdout:
//   fork      fork a child that prints "child <pid>" and lives until stdin closes
//   list-fds  fork and exec /bin/ls -l /proc/self/fd (without LD_PRELOAD); prints its output, "done"
//   exit      exit normally (exit handlers run)
// End of stdin also exits normally.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <pthread.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_named{false};

void sleepy_worker() {
  pthread_setname_np(pthread_self(), "sleepy-worker");
  g_named = true;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void list_fds_in_exec_child() {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    ::unsetenv("LD_PRELOAD");
    const char* argv[] = {"/bin/ls", "-l", "/proc/self/fd", nullptr};
    execve(argv[0], const_cast<char**>(argv), environ);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("done\n");
  std::fflush(stdout);
}

void fork_child() {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    std::printf("child %d\n", getpid());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    std::exit(0);
  }
}

}  // namespace

int main() {
  std::thread worker(sleepy_worker);
  while (!g_named) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // "ready" means named
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "fork") fork_child();
    else if (line == "list-fds") list_fds_in_exec_child();
    else if (line == "exit") break;
  }
  g_stop = true;
  worker.join();
  return 0;
}
