// A host that does what real daemons do to their process after start, one behaviour per command,
// so the end-to-end tests can show the agent survives each. It knows nothing about periscope (the
// agent comes in by LD_PRELOAD). A worker thread "hot-worker" burns CPU in hostile_hot_loop() from
// the start. Prints "ready <pid>", then obeys commands on stdin, one per line, answering one line:
//   reset-signals        every signal's disposition back to SIG_DFL (like a daemon's startup)  -> ok
//   own-handlers         its own handler on every real-time signal it may set                  -> ok
//   handled              how many signals its own handlers received                            -> handled N
//   block-threads N      N more threads that block every signal and burn CPU ("blocker")       -> ok
//   closefrom            close every descriptor from 3 up (like closefrom(3) when daemonizing) -> ok
//   reopen-fork DIR N    close every descriptor from 3 up, open N data files in DIR, fork; the
//                        child writes a line to each and reports how many writes failed        -> failures K
//   chroot DIR           chroot(DIR) and chdir("/")                                            -> ok | error ...
//   setuid UID           drop to UID (group too)                                               -> ok | error ...
//   escape-names         name itself and its hot worker with terminal escape sequences          -> ok
//   daemon-with-worker   fork a "master" that at once forks a "worker" (as nginx does when it
//                        daemonizes); both live until stdin closes    -> master P worker Q
//   idle-threads N       N more threads that never allocate (raw pthreads, waiting for the end);
//                        glibc's malloc arenas before and after they started, and how many of
//                        them run on an alternate signal stack (the agent's crash report gives
//                        each new thread one: its pthread_create hook ran)  -> arenas A B altstacks K
//   exit                 exit normally
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <malloc.h>
#include <iostream>
#include <pthread.h>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};
std::atomic<long> g_handled{0};
volatile unsigned long g_sink_hot = 0;

__attribute__((noinline)) void hostile_hot_loop(volatile unsigned long* sink) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 100000; ++i) *sink = *sink + static_cast<unsigned long>(i);
  }
}

void hot_worker() { hostile_hot_loop(&g_sink_hot); }

// Not the same instructions as hostile_hot_loop, or the compiler folds the two into one.
__attribute__((noinline)) void blocked_burn(volatile unsigned long* sink) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 100000; ++i) *sink = *sink * 3 + static_cast<unsigned long>(i);
  }
}

void blocker() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  pthread_setname_np(pthread_self(), "blocker");
  volatile unsigned long sink = 0;
  blocked_burn(&sink);
}

void reply(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    std::signal(sig, SIG_DFL);  // glibc refuses its own two (EINVAL); everything else resets
  }
}

void count_signal(int) { g_handled.fetch_add(1); }

void own_handlers() {
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) {
    struct sigaction action {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
}

void close_from_3() {
  // stdin, stdout and stderr stay: the test talks through them.
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 1024; ++fd) close(fd);
  }
}

int write_to_all(const std::vector<int>& fds) {
  int failures = 0;
  for (int fd : fds) {
    const char line[] = "data written by the child\n";
    if (write(fd, line, sizeof line - 1) != static_cast<ssize_t>(sizeof line - 1)) ++failures;
  }
  return failures;
}

void reopen_fork(const std::string& dir, int n) {
  close_from_3();
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    std::string path = dir + "/data-" + std::to_string(i);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) fds.push_back(fd);
  }
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return reply("error pipe");
  pid_t pid = fork();
  if (pid == 0) {
    usleep(200000);  // long enough for an agent restarting in the child to have done its work
    int failures = write_to_all(fds) + (n - static_cast<int>(fds.size()));
    (void)!write(pipe_fds[1], &failures, sizeof failures);
    _exit(0);
  }
  close(pipe_fds[1]);
  int failures = -1;
  (void)!read(pipe_fds[0], &failures, sizeof failures);
  close(pipe_fds[0]);
  waitpid(pid, nullptr, 0);
  for (int fd : fds) close(fd);
  reply("failures " + std::to_string(failures));
}

// The master forks its worker right away, before any agent of its own could have started.
void daemon_with_worker() {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return reply("error pipe");
  std::fflush(stdout);
  if (fork() == 0) {
    pid_t worker = fork();
    if (worker == 0) {
      std::string line;
      while (std::getline(std::cin, line)) {
      }
      _exit(0);
    }
    pid_t ids[2] = {getpid(), worker};
    (void)!write(pipe_fds[1], ids, sizeof ids);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    waitpid(worker, nullptr, 0);
    _exit(0);
  }
  pid_t ids[2] = {0, 0};
  (void)!read(pipe_fds[0], ids, sizeof ids);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  reply("master " + std::to_string(ids[0]) + " worker " + std::to_string(ids[1]));
}

void change_root(const std::string& dir) {
  if (chroot(dir.c_str()) != 0 || chdir("/") != 0) return reply(std::string("error ") + std::strerror(errno));
  reply("ok");
}

void drop_to(uid_t uid) {
  if (setgid(uid) != 0 || setuid(uid) != 0) return reply(std::string("error ") + std::strerror(errno));
  reply("ok");
}

// Names a terminal would obey: set the window title, ring the bell, clear the screen.
void escape_names(pthread_t hot) {
  ::prctl(PR_SET_NAME, "\x1b]0;owned\x07", 0, 0, 0);  // the main thread: the process's name
  ::pthread_setname_np(hot, "\x1b[2Jhot\x1b[5m");
}

// glibc's malloc arenas: the <heap> elements of malloc_info's report.
int malloc_arenas() {
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  if (!out) return -1;
  malloc_info(0, out);
  std::fclose(out);
  int heaps = 0;
  for (const char* p = text; (p = std::strstr(p, "<heap nr=")) != nullptr; ++p) ++heaps;
  std::free(text);
  return heaps;
}

std::atomic<int> g_idle_started{0};
std::atomic<int> g_idle_alt_stacks{0};

// A thread that never calls malloc or free (std::thread's would free its state on the new thread).
void* idle_thread(void*) {
  stack_t alt{};
  if (sigaltstack(nullptr, &alt) == 0 && !(alt.ss_flags & SS_DISABLE)) g_idle_alt_stacks.fetch_add(1);
  g_idle_started.fetch_add(1);
  while (!g_stop) ::usleep(10 * 1000);
  return nullptr;
}

void idle_threads(int n) {
  const int before = malloc_arenas();
  const int target = g_idle_started.load() + n;
  for (int i = 0; i < n; ++i) {
    pthread_t thread;
    if (pthread_create(&thread, nullptr, idle_thread, nullptr) != 0) return reply("error pthread_create");
    pthread_detach(thread);
  }
  while (g_idle_started.load() < target) ::usleep(1000);
  ::usleep(20 * 1000);  // past their first instructions: whatever their start does has happened
  reply("arenas " + std::to_string(before) + " " + std::to_string(malloc_arenas()) + " altstacks " +
        std::to_string(g_idle_alt_stacks.load()));
}

}  // namespace

int main() {
  std::vector<std::thread> threads;
  threads.emplace_back(hot_worker);
  // Named here, before "ready": named by itself, it could rename itself after escape-names.
  pthread_setname_np(threads[0].native_handle(), "hot-worker");
  reply("ready " + std::to_string(getpid()));
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "reset-signals") reset_signals(), reply("ok");
    else if (command == "own-handlers") own_handlers(), reply("ok");
    else if (command == "handled") reply("handled " + std::to_string(g_handled.load()));
    else if (command == "block-threads") {
      int n = 0;
      in >> n;
      for (int i = 0; i < n; ++i) threads.emplace_back(blocker);
      reply("ok");
    } else if (command == "closefrom") close_from_3(), reply("ok");
    else if (command == "reopen-fork") {
      std::string dir;
      int n = 0;
      in >> dir >> n;
      reopen_fork(dir, n);
    } else if (command == "chroot") {
      std::string dir;
      in >> dir;
      change_root(dir);
    } else if (command == "setuid") {
      long uid = -1;
      in >> uid;
      drop_to(static_cast<uid_t>(uid));
    } else if (command == "daemon-with-worker") daemon_with_worker();
    else if (command == "escape-names") escape_names(threads[0].native_handle()), reply("ok");
    else if (command == "idle-threads") {
      int n = 0;
      in >> n;
      idle_threads(n);
    } else if (command == "exit") break;
    else reply("unknown command " + command);
  }
  g_stop = true;
  for (auto& t : threads) t.join();
  return 0;
}
