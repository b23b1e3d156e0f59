#include "agent/src/crash/crash_report.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <poll.h>
#include <setjmp.h>
#include <time.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "agent/src/crash/alt_stacks.h"
#include "agent/src/fork_handling.h"
#include "agent/src/watchdog/fast_clock.h"
#include "agent/src/watchdog/request_table.h"
#include "profiler/capture/signal_unwind.h"
#include "profiler/capture/stack_capture.h"
#include "profiler/proc_reader.h"
#include "profiler/signal_delivery.h"

namespace periscope::agent {

namespace {

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr size_t kMaxFrames = 64;

struct sigaction g_previous[NSIG];
bool g_left_in_place[NSIG];  // eject found the host's handler over ours (it may chain to us): kept
std::atomic<bool> g_installed{false};
sigjmp_buf g_report_jump;  // a crash inside the report comes back here
constexpr long kWriteBudgetMs = 3000;  // a stderr nobody reads must not hold the crash forever
timespec g_report_started{};
char g_log_path[4096];
std::atomic<pid_t> g_reporter{0};
std::atomic<bool> g_reported{false};

// ---- Output: one buffer, flushed to stderr and the log (async-signal-safe: write only).
struct Out {
  int fds[2] = {STDERR_FILENO, -1};
  char buf[4096];
  size_t len = 0;

  void flush();
  void put(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (len == sizeof buf) flush();
      buf[len++] = s[i];
    }
  }
  Out& operator<<(const char* s) {
    put(s, std::strlen(s));
    return *this;
  }
  Out& dec(uint64_t v) {
    char d[24];
    size_t n = 0;
    do d[n++] = static_cast<char>('0' + v % 10); while ((v /= 10) != 0);
    while (n) put(&d[--n], 1);
    return *this;
  }
  Out& hex(uint64_t v) {
    char d[20];
    size_t n = 0;
    do d[n++] = "0123456789abcdef"[v & 15]; while ((v >>= 4) != 0);
    put("0x", 2);
    while (n) put(&d[--n], 1);
    return *this;
  }
};
Out g_out;
char g_maps[1 << 22];  // .bss: costs nothing until a crash reads /proc/self/maps into it
size_t g_maps_len = 0;
uint64_t g_pcs[kMaxFrames];
char g_entries[4096];

// async-signal-safe: milliseconds left of the report's write budget.
long budget_left_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long spent = (now.tv_sec - g_report_started.tv_sec) * 1000 + (now.tv_nsec - g_report_started.tv_nsec) / 1000000;
  return kWriteBudgetMs - spent;
}

// async-signal-safe: writes what fits in the budget; a reader that never reads costs 3 s at most.
void Out::flush() {
  for (int fd : fds) {
    size_t done = 0;
    while (fd >= 0 && done < len) {
      const long left = budget_left_ms();
      pollfd p{fd, POLLOUT, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      const ssize_t n = ::write(fd, buf + done, len - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  len = 0;
}

// async-signal-safe: /proc/`relative`, through the descriptor taken at start (still readable if
// the host chrooted), else by its path.
int open_proc(const char* relative, int flags) {
  const int proc = proc::proc_dir_fd();
  if (proc >= 0) return ::openat(proc, relative, flags | O_CLOEXEC);
  char path[128] = "/proc/";
  const size_t n = std::strlen(relative);
  if (n + 7 > sizeof path) return -1;
  std::memcpy(path + 6, relative, n + 1);
  return ::open(path, flags | O_CLOEXEC);
}

// async-signal-safe: up to `size` bytes of /proc/`relative`.
size_t read_proc(const char* relative, char* into, size_t size) {
  const int fd = open_proc(relative, O_RDONLY);
  if (fd < 0) return 0;
  size_t len = 0;
  while (len < size) {
    ssize_t n = ::read(fd, into + len, size - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  return len;
}

// async-signal-safe: a hex number at *p, advancing past it.
uint64_t parse_hex(const char*& p, const char* end) {
  uint64_t v = 0;
  for (; p < end; ++p) {
    const char c = *p;
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

// async-signal-safe: "/path/module+0xOFFSET" (file offset) for an address, from /proc/self/maps.
void describe(Out& out, uint64_t address) {
  const char* p = g_maps;
  const char* const end = g_maps + g_maps_len;
  while (p < end) {
    const char* line_end = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (!line_end) line_end = end;
    const char* q = p;
    const uint64_t start = parse_hex(q, line_end);
    ++q;
    const uint64_t stop = parse_hex(q, line_end);
    if (address >= start && address < stop && line_end - q > 6) {
      q += 6;  // " rwxp "
      const uint64_t offset = parse_hex(q, line_end);
      const char* path = static_cast<const char*>(std::memchr(q, '/', static_cast<size_t>(line_end - q)));
      if (!path) path = static_cast<const char*>(std::memchr(q, '[', static_cast<size_t>(line_end - q)));
      if (path && path < line_end) {
        out.put(path, static_cast<size_t>(line_end - path));
        out << "+";
        out.hex(address - start + offset);
      } else {
        out << "(anonymous memory)";
      }
      return;
    }
    p = line_end + 1;
  }
  out << "(not mapped)";
}

// async-signal-safe: one stack's frames, "#N 0xPC /module+0xOFFSET" a line each under `indent`.
void write_frames(Out& out, const char* indent, const uint64_t* pcs, size_t depth, bool truncated) {
  for (size_t i = 0; i < depth; ++i) {
    out << indent << "#";
    out.dec(i);
    out << " ";
    out.hex(pcs[i]);
    out << " ";
    describe(out, i == 0 ? pcs[i] : pcs[i] - 1);  // a return address names the call's line
    out << "\n";
  }
  if (truncated) out << indent << "... (deeper frames cut)\n";
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

const char* code_name(int sig, int code) {
  if (code <= 0) return code == SI_USER ? "sent by kill()" : code == SI_TKILL ? "sent by tgkill()/raise()/abort()" : "sent";
  if (sig == SIGSEGV) return code == SEGV_MAPERR ? "SEGV_MAPERR (no mapping at the address)" : code == SEGV_ACCERR ? "SEGV_ACCERR (no permission)" : "fault";
  if (sig == SIGBUS) return code == BUS_ADRALN ? "BUS_ADRALN" : code == BUS_ADRERR ? "BUS_ADRERR (beyond the file's end?)" : "BUS fault";
  if (sig == SIGFPE) return code == FPE_INTDIV ? "FPE_INTDIV (integer division by zero)" : code == FPE_INTOVF ? "FPE_INTOVF" : "FPE fault";
  if (sig == SIGILL) return code == ILL_ILLOPN || code == ILL_ILLOPC ? "ILL_ILLOPC (illegal instruction)" : "ILL fault";
  return "fault";
}

// The threads of the report: tids and names, read from /proc/self/task at the crash.
constexpr size_t kMaxThreadsListed = 1024;
struct ListedThread {
  pid_t tid;
  char name[16];
  uint8_t name_len;
  bool blocks_capture;  // it blocks the capture signal (SigBlk), read once: not signalled
};
ListedThread g_threads[kMaxThreadsListed];
size_t g_thread_count = 0;
size_t g_threads_unlisted = 0;  // beyond kMaxThreadsListed
char g_status[4096];

// async-signal-safe: "self/task/TID/<file>" into `path` (64 bytes).
void task_path(char* path, pid_t tid, const char* file) {
  std::memcpy(path, "self/task/", 10);
  size_t at = 10;
  char digits[12];
  size_t n = 0;
  do digits[n++] = static_cast<char>('0' + tid % 10); while ((tid /= 10) != 0);
  while (n) path[at++] = digits[--n];
  path[at++] = '/';
  for (const char* c = file; *c && at < 63; ++c) path[at++] = *c;
  path[at] = '\0';
}

// async-signal-safe: every thread's tid and name.
void list_threads() {
  g_thread_count = g_threads_unlisted = 0;
  const int dir = open_proc("self/task", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return;
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir, g_entries, sizeof g_entries);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      auto* e = reinterpret_cast<dirent64*>(g_entries + at);
      at += e->d_reclen;
      pid_t tid = 0;
      for (const char* c = e->d_name; *c >= '0' && *c <= '9'; ++c) tid = tid * 10 + (*c - '0');
      if (tid <= 0) continue;
      if (g_thread_count == kMaxThreadsListed) {
        ++g_threads_unlisted;
        continue;
      }
      ListedThread& t = g_threads[g_thread_count++];
      t.tid = tid;
      char path[64];
      task_path(path, tid, "comm");
      size_t len = read_proc(path, t.name, sizeof t.name);
      while (len && t.name[len - 1] == '\n') --len;
      t.name_len = static_cast<uint8_t>(len);
    }
  }
  ::close(dir);
}

// async-signal-safe: whether `tid` blocks `sig` now (its SigBlk in /proc), so it would not answer.
bool blocks_signal(pid_t tid, int sig) {
  char path[64];
  task_path(path, tid, "status");
  const size_t len = read_proc(path, g_status, sizeof g_status - 1);
  g_status[len] = '\0';
  const char* line = std::strstr(g_status, "SigBlk:");
  if (!line || sig < 1 || sig > 64) return false;
  const char* p = line + 7;
  while (*p == ' ' || *p == '\t') ++p;
  const uint64_t mask = parse_hex(p, g_status + len);
  return (mask >> (sig - 1)) & 1;
}

// What capture_for_crash found for one thread (it calls back in the order it was given).
struct OtherStacks {
  Out* out;
  size_t next;  // index into g_threads of the thread the next callback is about
};

void write_listed_name(Out& out, const ListedThread& t) {
  out << "  ";
  out.dec(static_cast<uint64_t>(t.tid));
  out << " \"";
  out.put(t.name, t.name_len);
  out << "\"";
}

// async-signal-safe: one thread's captured stack (the frames as for the crashing thread).
void write_other_stack(void* arg, pid_t tid, const uint64_t* pcs, size_t depth, bool truncated) {
  auto& o = *static_cast<OtherStacks*>(arg);
  Out& out = *o.out;
  size_t i = o.next;
  while (i < g_thread_count && g_threads[i].tid != tid) ++i;
  if (i == g_thread_count) return;
  o.next = i + 1;
  write_listed_name(out, g_threads[i]);
  if (depth == 0) {
    out << ": no answer in time; no stack\n";
    return;
  }
  if (budget_left_ms() < 1000) {  // naming frames reads the maps once per frame: keep time to end
    out << ": stack not written, the report's time is nearly spent\n";
    return;
  }
  out << ":\n";
  write_frames(out, "    ", pcs, depth, truncated);
  out.flush();
}

// async-signal-safe: every thread with its name, and the stacks of the others (up to
// StackCapture::kCrashThreads of them, captured together within 500 ms).
void write_threads(Out& out, pid_t crashing) {
  list_threads();
  if (g_thread_count == 0) return;
  out << "threads (";
  out.dec(g_thread_count + g_threads_unlisted);
  out << "), with the stacks of the others:\n";
  const int sig = StackCapture::signal_number();
  static pid_t asked[StackCapture::kCrashThreads];
  size_t n_asked = 0;
  for (size_t i = 0; i < g_thread_count; ++i) {
    ListedThread& t = g_threads[i];
    t.blocks_capture = sig != 0 && t.tid != crashing && blocks_signal(t.tid, sig);
    if (t.tid == crashing || sig == 0 || n_asked == StackCapture::kCrashThreads || t.blocks_capture) continue;
    asked[n_asked++] = t.tid;
  }
  for (size_t i = 0; i < g_thread_count; ++i) {
    if (g_threads[i].tid != crashing) continue;
    write_listed_name(out, g_threads[i]);
    out << "  <- crashed (its stack is above)\n";
  }
  OtherStacks stacks{&out, 0};
  const bool captured = n_asked > 0 && StackCapture::capture_for_crash(asked, n_asked, 500, write_other_stack, &stacks);
  // The threads whose stacks were not asked for (or not written above): names and why.
  size_t k = 0;
  for (size_t i = 0; i < g_thread_count; ++i) {
    const ListedThread& t = g_threads[i];
    if (captured && k < n_asked && asked[k] == t.tid) {
      ++k;
      continue;
    }
    if (t.tid == crashing) continue;
    write_listed_name(out, t);
    if (sig == 0) {
      out << ": stack capture is off";
    } else if (n_asked > 0 && !captured) {
      out << ": the capture signal's handler was replaced; no stack";
    } else if (t.blocks_capture) {
      out << ": blocks the capture signal; no stack";
    } else {
      out << ": beyond the first ";
      out.dec(StackCapture::kCrashThreads);
      out << " threads; no stack";
    }
    out << "\n";
  }
  if (g_threads_unlisted) {
    out << "  ... and ";
    out.dec(g_threads_unlisted);
    out << " more threads\n";
  }
}

// async-signal-safe: the request table's slots are read without locks, as the watchdog does.
void write_requests(Out& out) {
  RequestTable* table = request_table();
  if (!table) return;
  const uint64_t now = now_ticks();
  size_t shown = 0;
  for (size_t i = 0; i < table->high_water() && shown < 100; ++i) {
    const RequestSlot& slot = table->slot(i);
    const SlotState state = slot_state(slot.word.load(std::memory_order_acquire));
    if (state != kActive && state != kReported) continue;
    if (shown++ == 0) out << "requests in flight:\n";
    const uint64_t start = slot.start_ticks.load(std::memory_order_relaxed);
    const double age_ms = now > start ? ticks_to_ns(now - start) / 1e6 : 0;
    out << "  ";
    out.put(slot.name, strnlen(slot.name, sizeof slot.name));
    out << "  for ";
    out.dec(static_cast<uint64_t>(age_ms));
    out << " ms  on thread ";
    out.dec(static_cast<uint64_t>(slot.tid.load(std::memory_order_relaxed)));
    out << "\n";
  }
  if (shown == 0) out << "requests in flight: none\n";
}

// async-signal-safe.
void write_report(int sig, siginfo_t* info, void* context, pid_t tid) {
  Out& out = g_out;
  out.len = 0;
  ::clock_gettime(CLOCK_MONOTONIC, &g_report_started);
  out.fds[1] = g_log_path[0] ? ::open(g_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0600) : -1;
  g_maps_len = read_proc("self/maps", g_maps, sizeof g_maps);
  char name[32];
  size_t name_len = read_proc("self/comm", name, sizeof name);
  while (name_len && name[name_len - 1] == '\n') --name_len;
  const auto* uc = static_cast<const ucontext_t*>(context);
  const uint64_t pc = uc ? static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]) : 0;

  out << "\nperiscope: crash report: pid ";
  out.dec(static_cast<uint64_t>(::getpid()));
  out << " (";
  out.put(name, name_len);
  out << ") got ";
  out << signal_name(sig) << " (";
  out.dec(static_cast<uint64_t>(sig));
  out << "), " << code_name(sig, info ? info->si_code : 0);
  if (info && info->si_code > 0 && sig != SIGABRT) {
    out << ", address ";
    out.hex(reinterpret_cast<uint64_t>(info->si_addr));
  }
  out << ", in thread ";
  out.dec(static_cast<uint64_t>(tid));
  out << "\n  at ";
  out.hex(pc);
  out << " ";
  describe(out, pc);
  out << "\nstack of the crashing thread (periscope view-crash FILE names the functions):\n";
  uint64_t* pcs = g_pcs;
  bool truncated = false;
  const size_t depth = unwind_signal_context(context, pcs, kMaxFrames, &truncated);
  write_frames(out, "  ", pcs, depth, truncated);
  out.flush();
  write_requests(out);
  write_threads(out, tid);
  out << "periscope: end of crash report; the signal now has the effect it had without the agent\n";
  out.flush();
  if (out.fds[1] >= 0) ::close(out.fds[1]);
}

// async-signal-safe. The disposition from before the agent, delivered by the kernel with its own
// flags (SA_RESETHAND, sa_mask...): put back, then a fault happens again when this handler
// returns; a signal that was sent is queued again (with its siginfo), blocked until we return.
void run_previous(int sig, siginfo_t* info) {
  agent_sigaction(sig, &g_previous[sig], nullptr);
  const bool fault = info && info->si_code > 0 && sig != SIGABRT;
  if (fault) return;
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, sig);
  ::pthread_sigmask(SIG_BLOCK, &just_this, nullptr);  // the handler's return restores the mask
  siginfo_t again = info ? *info : siginfo_t{};
  if (!info) {
    again.si_signo = sig;
    again.si_code = SI_TKILL;
  }
  ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), ::syscall(SYS_gettid), sig, &again);
}

// async-signal-safe.
void on_crash(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  // A signal that was sent and that the host ignores stays ignored: no report.
  if (g_previous[sig].sa_handler == SIG_IGN && (!info || info->si_code <= 0)) return;
  const auto tid = static_cast<pid_t>(::syscall(SYS_gettid));
  pid_t expected = 0;
  if (g_reporter.compare_exchange_strong(expected, tid)) {
    if (!g_reported.exchange(true) && sigsetjmp(g_report_jump, 1) == 0) write_report(sig, info, context, tid);
    g_reporter.store(0);
  } else if (expected == tid) {
    siglongjmp(g_report_jump, 1);  // a crash inside the report: abandon it, handle the first signal
  } else {
    // Another thread is writing the report: let it finish (at most ~2 s), then die as it does.
    for (int i = 0; i < 200 && g_reporter.load() != 0; ++i) {
      timespec ten_ms{0, 10 * 1000 * 1000};
      ::nanosleep(&ten_ms, nullptr);
    }
  }
  run_previous(sig, info);
  errno = saved_errno;
}

}  // namespace

std::string install_crash_handlers(const std::string& log_path) {
  if (log_path.size() >= sizeof g_log_path) return "PERISCOPE_CRASH_LOG is too long";
  std::memcpy(g_log_path, log_path.c_str(), log_path.size() + 1);
  if (g_installed.exchange(true)) return {};
  // libunwind initialises itself on first use (allocating): not in a crashing process.
  uint64_t warm[4];
  bool truncated = false;
  unwind_here(warm, 4, &truncated);
  for (int sig : kCrashSignals) {
    // The host put its handler over ours before an eject, and it may call ours: it stays, and
    // ours keeps the disposition from before.
    if (g_left_in_place[sig]) continue;
    struct sigaction action {};
    action.sa_sigaction = on_crash;
    // NODEFER: a fault in the report reaches us (and ends the report); every other signal waits.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigfillset(&action.sa_mask);
    for (int crash : kCrashSignals) sigdelset(&action.sa_mask, crash);
    if (agent_sigaction(sig, &action, &g_previous[sig]) != 0) {
      return std::string("crash report: sigaction: ") + std::strerror(errno);
    }
  }
  // A stack overflow's SIGSEGV runs the handler only on an alternate stack (alt_stacks.h).
  give_main_thread_alt_stack();
  set_new_threads_want_alt_stacks(true);
  return {};
}

void uninstall_crash_handlers() {
  if (!g_installed.exchange(false)) return;
  set_new_threads_want_alt_stacks(false);
  for (int sig : kCrashSignals) {
    struct sigaction current {};
    if (agent_sigaction(sig, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
        current.sa_sigaction == on_crash) {
      agent_sigaction(sig, &g_previous[sig], nullptr);  // the host's, if it put none since
      g_left_in_place[sig] = false;
    } else {
      g_left_in_place[sig] = true;
    }
  }
}

PERISCOPE_FORK_PATH void reset_crash_report_in_fork_child() {
  reset_alt_stack_pool_in_fork_child();
  // A report some parent thread was writing is not this process's. Written only if set: a page
  // the child writes is a page fork copies for it.
  if (g_reporter.load() != 0) g_reporter.store(0);
  if (g_reported.load()) g_reported.store(false);
}

}  // namespace periscope::agent
