#include "profiler/capture/sampler.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <atomic>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "profiler/fd_identity.h"
#include "profiler/signal_delivery.h"
#include "profiler/capture/sample_label.h"
#include "profiler/capture/signal_unwind.h"
#include "profiler/thread_list.h"
#include "profiler/sampling_rate.h"

namespace periscope {

namespace {

constexpr size_t kRingRecords = 1024;
constexpr size_t kMaxPerfFds = 4096;

std::atomic<int> g_signal{0};
std::atomic<SampleRing*> g_ring{nullptr};
std::atomic<bool> g_sampling{false};
std::atomic<pid_t> g_sampling_pid{0};  // the process that set g_sampling (a fork child copies it)
std::atomic<uint64_t> g_lost_reentry{0};
std::atomic<int> g_perf_fds[kMaxPerfFds];  // 0 free, else fd + 1: closed by a fork child
std::atomic<int> g_perf_fds_used{0};       // so that a fork child without any skips the table
// The CPU timers armed now (timer_t values, 0 free), for the host-takes-the-signal path, which
// must stop every source of the signal from the host's own thread.
constexpr size_t kMaxTimers = 4096;
std::atomic<intptr_t> g_timers[kMaxTimers];
// Set when the host changed the signal's action while sampling: the sources were stopped from
// the host's thread; the agent's next tick ends the profile and says why.
std::atomic<bool> g_silenced_by_host{false};
// CPU mode: whether perf_event is used (else CPU timers), for threads that arm themselves.
std::atomic<bool> g_use_perf{true};
// Whether perf events sample user mode only (exclude_kernel): what perf_event_paranoid 2 allows a
// process without CAP_PERFMON, as `perf record` does for such a user (cycles:u). Each thread then
// has a CPU timer too, whose samples are kept only when they come in a system call: the time in
// the kernel that the perf event does not see.
std::atomic<bool> g_perf_user_only{false};
// Threads started while sampling (agent/src/hooks/thread_hooks.cpp) arm themselves at once, so a
// thread that lives 10 ms is sampled from its first millisecond, not from the next rescan; they
// hand their perf event or timer to the agent's thread here. state: 0 free, 1 arming, 2 armed.
struct SelfArmed {
  std::atomic<int> state{0};
  std::atomic<pid_t> tid{0};
  int perf_fd = -1;
  FdIdentity perf_id;  // taken at once: by the agent's next rescan the host may own the number
  timer_t timer{};
  bool has_timer = false;
};
constexpr size_t kMaxSelfArmed = 256;
SelfArmed g_self_armed[kMaxSelfArmed];
std::atomic<uint64_t> g_threads_started{0};  // while sampling: the agent rescans when it moves
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_handler = false;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_jitter_state = 0;
// The mean sampling period (ns) and, by descriptor number, the thread each of our perf events
// samples (0: not ours) and the handlers restarting it now, for the handler's restart (perf
// descriptors beyond the table keep a fixed period). A signal of an event closed since (handed
// over twice, disarmed) may come late, when the number is another thread's event: the owner
// check keeps it from restarting that one.
std::atomic<uint64_t> g_period_ns{0};
constexpr int kPerfFdFlags = 65536;
std::atomic<pid_t> g_perf_fd_owner[kPerfFdFlags];
std::atomic<int> g_perf_fd_restarting[kPerfFdFlags];
// sigev_value of the CPU timers beside user-mode perf events: their samples are kept only in
// system calls.
constexpr int kSystemCallsOnly = 0x53595343;
// How long the handler takes, in log2(ns) buckets with 4 sub-steps each (for p50/p99).
constexpr int kCostBuckets = 128;
std::atomic<uint64_t> g_handler_cost[kCostBuckets];
std::atomic<uint64_t> g_handler_ns{0};  // their sum

// async-signal-safe: clock_gettime is, and CLOCK_MONOTONIC comes from the vDSO.
uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// async-signal-safe: arithmetic and one relaxed atomic add.
void record_cost(uint64_t ns) {
  int bucket = 0;
  if (ns > 0) {
    int log2 = 63 - __builtin_clzll(ns);
    int sub = log2 >= 2 ? static_cast<int>((ns >> (log2 - 2)) & 3) : 0;
    bucket = std::min(kCostBuckets - 1, log2 * 4 + sub);
  }
  g_handler_cost[bucket].fetch_add(1, std::memory_order_relaxed);
  g_handler_ns.fetch_add(ns, std::memory_order_relaxed);
}

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// async-signal-safe: xorshift64 on thread-local state. The next period, uniform in 0.5-1.5 times
// the mean: a fixed period phase-locks with work that repeats at a divisor of it (6/3/1 units of
// work read 26/72/2 %), random i.i.d. periods cannot, and their mean keeps the rate and every
// sample's weight exact.
uint64_t next_period_ns(uint64_t mean) {
  uint64_t x = t_jitter_state;
  if (x == 0) x = now_ns() ^ (static_cast<uint64_t>(current_tid()) << 32) ^ 0x9e3779b97f4a7c15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  t_jitter_state = x;
  return mean / 2 + x % (mean + 1);
}

// A new period is drawn after every sample: runs of equal periods are correlated samples. Drawing
// after one sample in 16 made the handler cheap, but when a run's period is close to the period
// of the host's work its samples land at nearly the same phase, and the PeriodicWork tests read
// 55/36/9 and 71/.. for 60/30/10 (outside 4 standard deviations of independent samples).
//
// What a new period costs is arming the event's hrtimer, which programs the timer hardware: on
// this VM (the hypervisor's timer) ~8 us each time. PERF_EVENT_IOC_PERIOD on a running event
// stops and starts it, two programmings, 16 us median a sample. So each perf event stops itself
// after one overflow (event_limit 1: its hrtimer is not restarted), and the handler sets the next
// period on the stopped event (no programming) and starts it with PERF_EVENT_IOC_REFRESH (one),
// 8 us. A thread that cannot run the handler (it blocks the signal) has one signal queued at most,
// its event stopped until the handler runs.
//
// async-signal-safe: timer_settime. The period until the sample after this one, on the CPU timer
// that sent this signal.
void draw_next_timer_period(const siginfo_t* info) {
  const uint64_t mean = g_period_ns.load(std::memory_order_relaxed);
  if (mean == 0) return;
  const uint64_t period = next_period_ns(mean);
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(period / 1000000000ull);
  spec.it_value.tv_nsec = static_cast<long>(period % 1000000000ull);
  spec.it_interval = spec.it_value;  // if a draw is ever missed, the same period again
  (void)::syscall(SYS_timer_settime, info->si_timerid, 0, &spec, nullptr);
}

// async-signal-safe: atomics and two ioctls inside the send guard. Restarts the perf event that
// sent this signal (stopped after its overflow) with a new period, unless sampling has stopped,
// the host has taken the signal, or the descriptor is not this thread's event any more (disarm
// waits for restarts under way before it closes one).
void restart_perf_event(int sig, const siginfo_t* info, pid_t self) {
  const int fd = info->si_fd;
  if (info->si_code <= 0 || fd < 0 || fd >= kPerfFdFlags || !begin_guarded_send(sig)) return;
  g_perf_fd_restarting[fd].fetch_add(1);
  if (g_sampling.load() && g_perf_fd_owner[fd].load() == self) {
    const uint64_t mean = g_period_ns.load(std::memory_order_relaxed);
    if (mean != 0) {
      uint64_t next = next_period_ns(mean);
      (void)::ioctl(fd, PERF_EVENT_IOC_PERIOD, &next);
    }
    (void)::ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);
  }
  g_perf_fd_restarting[fd].fetch_sub(1);
  end_guarded_send(sig);
}

// Waits until no handler is restarting perf descriptor `fd` (forgotten already: none starts now).
void wait_for_restarts(int fd) {
  if (fd >= 0 && fd < kPerfFdFlags) wait_for_zero(g_perf_fd_restarting[fd]);
}

// async-signal-safe: libunwind's fast backtrace, cut to start at the interrupted pc; the slower
// cursor walk from the signal context when the fast one does not pass through it.
void fill_stack(SampleRecord& r, void* ucontext) {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  const uint64_t ip = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  int n = unw_backtrace(reinterpret_cast<void**>(r.pcs), static_cast<int>(kMaxSampleDepth));
  for (int i = 0; i < n && i < 16; ++i) {
    if (r.pcs[i] != ip) continue;
    std::memmove(r.pcs, r.pcs + i, static_cast<size_t>(n - i) * sizeof r.pcs[0]);
    r.depth = static_cast<uint32_t>(n - i);
    r.truncated = n == static_cast<int>(kMaxSampleDepth);
    return;
  }
  r.depth = static_cast<uint32_t>(unwind_signal_context(ucontext, r.pcs, kMaxSampleDepth, &r.truncated));
}

// async-signal-safe: process_vm_readv, which fails where a plain read would fault (code pages
// that are execute-only under protection keys, or unmapped meanwhile). Whether the thread was in
// a system call when the signal came: its pc right after a `syscall` instruction (0f 05), or on
// one (a call the kernel restarts after the handler).
bool in_system_call(const void* ucontext) {
  const auto pc = static_cast<uintptr_t>(static_cast<const ucontext_t*>(ucontext)->uc_mcontext.gregs[REG_RIP]);
  unsigned char code[4] = {};
  iovec local{code, sizeof code};
  iovec remote{reinterpret_cast<void*>(pc - 2), sizeof code};
  if (::syscall(SYS_process_vm_readv, ::getpid(), &local, 1, &remote, 1, 0) != static_cast<long>(sizeof code)) {
    return false;
  }
  return (code[0] == 0x0f && code[1] == 0x05) || (code[2] == 0x0f && code[3] == 0x05);
}

// async-signal-safe: atomics, gettid, libunwind into a preallocated ring cell; errno preserved.
void on_sample_signal(int sig, siginfo_t* info, void* ucontext) {
  const int saved_errno = errno;
  const uint64_t started = now_ns();
  const bool from_timer = info->si_code == SI_TIMER;
  const pid_t self = current_tid();
  // Beside a user-mode perf event, a CPU timer's signal outside a system call is the event's to take.
  const bool wanted = !from_timer || info->si_value.sival_int != kSystemCallsOnly || in_system_call(ucontext);
  bool sampled = false;
  SampleRing* ring = g_ring.load(std::memory_order_acquire);
  if (!wanted) {
    if (ring && g_sampling.load(std::memory_order_relaxed)) draw_next_timer_period(info);
  } else if (ring && g_sampling.load(std::memory_order_relaxed)) {
    if (t_in_handler) {
      g_lost_reentry.fetch_add(1, std::memory_order_relaxed);
    } else if (SampleRing::Cell* cell = ring->begin_push()) {
      t_in_handler = true;
      SampleRecord& r = cell->record;
      r.tid = self;
      r.weight = 1 + (from_timer && info->si_overrun > 0 ? static_cast<uint32_t>(info->si_overrun) : 0);
      r.label = sample_label();
      fill_stack(r, ucontext);
      ring->commit_push(cell);
      if (from_timer) draw_next_timer_period(info);
      t_in_handler = false;
      sampled = true;
    }
  }
  if (!from_timer) restart_perf_event(sig, info, self);  // sampled or not: the event waits for this
  if (sampled) record_cost(now_ns() - started);
  errno = saved_errno;
}

// async-signal-safe: atomics. False when the table is full: the caller does not arm (a source
// the host-takes-the-signal path could not find must not exist).
bool remember_perf_fd(int fd, pid_t owner) {
  for (auto& slot : g_perf_fds) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, fd + 1)) {
      if (fd < kPerfFdFlags) g_perf_fd_owner[fd].store(owner);
      g_perf_fds_used.fetch_add(1);
      return true;
    }
  }
  return false;
}

void forget_perf_fd(int fd) {
  if (fd >= 0 && fd < kPerfFdFlags) g_perf_fd_owner[fd].store(0);
  for (auto& slot : g_perf_fds) {
    int expected = fd + 1;
    if (slot.compare_exchange_strong(expected, 0)) {
      g_perf_fds_used.fetch_sub(1);
      return;
    }
  }
}

// Timers are kept as their value + 1: glibc hands out the kernel's ids, and a process's first is 0.
// async-signal-safe: atomics. False when the table is full.
bool remember_timer(timer_t timer) {
  const intptr_t value = reinterpret_cast<intptr_t>(timer) + 1;
  for (auto& slot : g_timers) {
    intptr_t expected = 0;
    if (slot.compare_exchange_strong(expected, value)) return true;
  }
  return false;
}

void forget_timer(timer_t timer) {
  const intptr_t value = reinterpret_cast<intptr_t>(timer) + 1;
  for (auto& slot : g_timers) {
    intptr_t expected = value;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

// async-signal-safe: ioctl and timer_settime. Runs on a host thread that is changing the sampling
// signal's action: no perf event or timer may send it any more. The agent's tick cleans up. True
// when it stopped any.
bool silence_for_host() {
  g_silenced_by_host.store(true);
  g_sampling.store(false);
  bool stopped_any = false;
  if (g_perf_fds_used.load() != 0) {
    for (auto& slot : g_perf_fds) {
      const int value = slot.load();
      if (value > 0 && fd_is_kind(value - 1, "anon_inode:[perf_event]")) {
        stopped_any |= ::ioctl(value - 1, PERF_EVENT_IOC_DISABLE, 0) == 0;
      }
    }
  }
  const itimerspec stopped{};
  for (auto& slot : g_timers) {
    const intptr_t value = slot.load();
    if (value != 0) stopped_any |= ::timer_settime(reinterpret_cast<timer_t>(value - 1), 0, &stopped, nullptr) == 0;
  }
  return stopped_any;
}

int perf_event_paranoid() {
  int level = -9;
  if (FILE* f = std::fopen("/proc/sys/kernel/perf_event_paranoid", "r")) {
    if (std::fscanf(f, "%d", &level) != 1) level = -9;
    std::fclose(f);
  }
  return level;
}

clockid_t thread_cpu_clock(pid_t tid) { return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6); }

double process_cpu_seconds() {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

uint64_t thread_cpu_ns(pid_t tid) {
  timespec ts{};
  if (::clock_gettime(thread_cpu_clock(tid), &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A sampling task-clock event, disabled, counting user mode only or everything.
perf_event_attr task_clock_attr(uint64_t period_ns, bool user_only) {
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_TASK_CLOCK;
  attr.sample_period = period_ns;
  attr.disabled = 1;
  attr.exclude_kernel = attr.exclude_hv = user_only ? 1 : 0;
  return attr;
}

// A task-clock perf event on `tid` (0: the calling thread) whose overflows will send `sig` to
// `owner`, not started (start_perf_sampler, once remember_perf_fd has it); -1 when not allowed or
// the thread is gone (errno says which).
int open_perf_sampler(pid_t tid, pid_t owner, int sig, uint64_t first_period_ns) {
  // exclude_kernel only where the kernel refuses the whole clock: a sample due while the thread
  // is in the kernel is then dropped (a postgres postmaster, its time in system calls, would
  // record almost none; CPU timers sample that time beside it), but every sample taken is placed
  // right, which CPU timers, firing at the scheduler's tick (4 ms at HZ=250), cannot promise.
  perf_event_attr attr = task_clock_attr(first_period_ns, g_perf_user_only.load());
  attr.wakeup_events = 1;
  const int fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return -1;
  f_owner_ex owner_ex{F_OWNER_TID, owner};
  if (::fcntl(fd, F_SETOWN_EX, &owner_ex) == 0 && ::fcntl(fd, F_SETSIG, sig) == 0 &&
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) == 0) {
    return fd;
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return -1;
}

// async-signal-safe: one ioctl. Starts a remembered perf sampler: stopping itself after one
// overflow, for the handler to restart with a new period (restart_perf_event); a descriptor
// beyond the handler's table runs on at its first period instead.
bool start_perf_sampler(int fd) {
  return fd < kPerfFdFlags ? ::ioctl(fd, PERF_EVENT_IOC_REFRESH, 1) == 0 : ::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) == 0;
}

std::string user_mode_only_words() {
  return "perf_event task-clock per thread in user mode, per-thread CPU timers in system calls "
         "(perf_event_paranoid " + std::to_string(perf_event_paranoid()) +
         " and no CAP_PERFMON: perf_event may not look into the kernel)";
}

enum class PerfAccess { kFull, kUserOnly, kNone };

// Which perf events this process may open on its threads, tried on the calling thread (a
// disabled event, closed at once).
PerfAccess probe_perf_access() {
  for (bool user_only : {false, true}) {
    perf_event_attr attr = task_clock_attr(1000000, user_only);
    const int fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd >= 0) {
      ::close(fd);
      return user_only ? PerfAccess::kUserOnly : PerfAccess::kFull;
    }
    if (errno != EACCES && errno != EPERM) break;  // not a permission: exclude_kernel will not help
  }
  return PerfAccess::kNone;
}

// A timer on `tid`'s CPU clock that sends `sig` to it, first after `first_ns`, then every `period_ns`.
bool open_cpu_timer(pid_t tid, int sig, uint64_t first_ns, uint64_t period_ns, timer_t* out,
                    bool system_calls_only = false) {
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_int = system_calls_only ? kSystemCallsOnly : 0;
  sev._sigev_un._tid = tid;
  if (::timer_create(thread_cpu_clock(tid), &sev, out) != 0) return false;
  if (!remember_timer(*out)) {  // before it runs: the host-takes-the-signal path must find it
    ::timer_delete(*out);
    return false;
  }
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period_ns / 1000000000ull);
  spec.it_interval.tv_nsec = static_cast<long>(period_ns % 1000000000ull);
  spec.it_value.tv_sec = static_cast<time_t>(first_ns / 1000000000ull);
  spec.it_value.tv_nsec = static_cast<long>(first_ns % 1000000000ull);
  if (::timer_settime(*out, 0, &spec, nullptr) == 0) return true;
  forget_timer(*out);
  ::timer_delete(*out);
  return false;
}

}  // namespace

size_t RawProfile::KeyHash::operator()(const Key& k) const {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(k.tid) ^ (static_cast<uint64_t>(k.label) << 32);
  for (uint64_t pc : k.pcs) h = (h ^ pc) * 1099511628211ull;
  return static_cast<size_t>(h);
}

struct Sampler::ThreadState {
  int perf_fd = -1;
  FdIdentity perf_id;  // the host may close our perf descriptor and reuse its number
  timer_t timer{};
  bool has_timer = false;
  uint64_t last_cpu_ns = 0;
  std::vector<uint64_t> last_pcs;  // wall mode: an idle thread counts again at its last stack
  uint32_t last_label = 0;         // and label (it cannot change its label without running)
  bool seen = false;               // during a rescan
  bool armed = false;              // CPU mode: has a perf event or timer; wall mode: is signalled
  bool awaiting = false;           // wall mode: signalled, its sample not drained yet
  double last_cpu_s = -1;          // at the last rescan, to re-check only threads that ran
};

std::string Sampler::install(int requested) {
  if (g_signal.load() != 0) return {};
  int sig = 0;
  // From the top: stack capture takes the bottom.
  auto error = install_realtime_handler(requested, SignalSearch::kFromTop, "profiling", on_sample_signal, &sig);
  if (error.empty()) {
    g_signal.store(sig);
    guard_signal(sig, on_sample_signal, silence_for_host);
  }
  return error;
}

int Sampler::signal_number() { return g_signal.load(); }

void Sampler::uninstall() {
  const int sig = g_signal.exchange(0);
  if (sig != 0) (void)release_signal(sig, on_sample_signal);
}

double Sampler::handler_cost_ns(double quantile) {
  uint64_t total = 0;
  for (const auto& b : g_handler_cost) total += b.load(std::memory_order_relaxed);
  if (total == 0) return 0;
  const auto wanted = static_cast<uint64_t>(quantile * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < kCostBuckets; ++i) {
    seen += g_handler_cost[i].load(std::memory_order_relaxed);
    if (seen >= wanted) {  // the bucket's midpoint
      const int log2 = i / 4, sub = i % 4;
      const double low = std::ldexp(1.0 + sub / 4.0, log2);
      return low * (1.0 + 0.125);
    }
  }
  return 0;
}

// hot: with the agent's fork-child code (agent/src/fork_handling.h), one page a fork child faults in.
__attribute__((hot)) bool Sampler::samples_new_threads() { return g_sampling.load(std::memory_order_relaxed); }

void Sampler::arm_new_thread() {
  if (!g_sampling.load(std::memory_order_relaxed)) return;
  if (::getpid() != g_sampling_pid.load()) return;  // a fork child: its parent was sampling, not it
  g_threads_started.fetch_add(1);
  const int sig = g_signal.load();
  const uint64_t mean = g_period_ns.load();
  if (mean == 0) return;  // wall mode: the agent's next tick adds it
  sigset_t all, old;
  sigfillset(&all);
  if (::pthread_sigmask(SIG_SETMASK, &all, &old) != 0) return;
  // A thread that starts with the signal blocked is left to the rescan, which names it. Every
  // signal stays blocked meanwhile: a host handler that changed the sampling signal's action on
  // this thread while it holds the guard would wait for itself.
  if (sigismember(&old, sig) != 1 && begin_guarded_send(sig)) {
    SelfArmed* slot = nullptr;
    for (auto& candidate : g_self_armed) {
      int free_slot = 0;
      if (candidate.state.compare_exchange_strong(free_slot, 1)) {
        slot = &candidate;
        break;
      }
    }
    if (slot && g_sampling.load()) {  // checked again inside the guard: stop() waits for us
      const pid_t tid = current_tid();
      slot->tid.store(tid);
      slot->has_timer = false;
      slot->perf_fd = g_use_perf.load() ? open_perf_sampler(0, tid, sig, next_period_ns(mean)) : -1;
      if (slot->perf_fd >= 0 && !remember_perf_fd(slot->perf_fd, tid)) {
        ::close(slot->perf_fd);
        slot->perf_fd = -1;
      } else if (slot->perf_fd >= 0 && !start_perf_sampler(slot->perf_fd)) {
        forget_perf_fd(slot->perf_fd);  // never started: no handler can be restarting it
        ::close(slot->perf_fd);
        slot->perf_fd = -1;
      } else if (slot->perf_fd >= 0) {
        slot->perf_id = FdIdentity::of(slot->perf_fd).value_or(FdIdentity{});
        slot->has_timer = g_perf_user_only.load() && open_cpu_timer(tid, sig, next_period_ns(mean), mean, &slot->timer,
                                                                    /*system_calls_only=*/true);
      } else {
        slot->has_timer = open_cpu_timer(tid, sig, next_period_ns(mean), mean, &slot->timer);
      }
      slot->state.store(slot->perf_fd >= 0 || slot->has_timer ? 2 : 0);
    } else if (slot) {
      slot->state.store(0);
    }
    end_guarded_send(sig);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Sampler::Sampler() = default;

Sampler::~Sampler() { stop(); }

std::string Sampler::start(SampleMode mode, int hz, bool timers_only) {
  if (g_signal.load() == 0) return "profiling is off (no usable signal)";
  if (!handler_installed(g_signal.load(), on_sample_signal)) {
    return replaced_handler_words(g_signal.load()) + "; periscope does not take it back, so this process cannot be "
           "profiled by signal (set PERISCOPE_PROFILE_SIGNAL to a signal the host leaves alone)";
  }
  if (!valid_sampling_hz(hz)) return "rate must be " + sampling_hz_range() + " Hz";
  stop();
  if (!g_ring.load()) g_ring.store(new SampleRing(kRingRecords));  // kept for the process's life
  SampleRing* ring = g_ring.load();
  ring->drain([](const SampleRecord&) {});  // leftovers of an earlier run
  mode_ = mode;
  hz_ = hz;
  g_period_ns.store(mode == SampleMode::kCpu ? 1000000000ull / static_cast<uint64_t>(hz) : 0);
  const PerfAccess access = timers_only ? PerfAccess::kNone : probe_perf_access();
  use_perf_ = access != PerfAccess::kNone;
  g_use_perf.store(use_perf_);
  g_perf_user_only.store(access == PerfAccess::kUserOnly);
  profile_ = RawProfile{};
  profile_.mode = mode;
  profile_.hz = hz;
  profile_.started = std::chrono::steady_clock::now();
  profile_.lost = 0;
  dropped_at_start_ = ring->dropped();
  reentry_at_start_ = g_lost_reentry.load();
  cpu_at_start_ = process_cpu_seconds();
  for (auto& b : g_handler_cost) b.store(0, std::memory_order_relaxed);
  g_handler_ns.store(0, std::memory_order_relaxed);
  signals_sent_ = 0;
  missed_wall_samples_ = 0;
  last_wall_tick_ = {};
  queued_at_start_ = queued_signals_of_uid();
  g_silenced_by_host.store(false);
  g_sampling_pid.store(::getpid());
  running_ = true;
  g_sampling.store(true);
  profile_.clock = mode == SampleMode::kWall             ? "wall clock, every thread"
                   : access == PerfAccess::kUserOnly    ? user_mode_only_words()
                   : use_perf_                          ? "perf_event task-clock per thread"
                                                        : "per-thread CPU timer (timer_create)";
  rescan_threads();  // may find perf_event not allowed
  if (mode == SampleMode::kCpu && !use_perf_ && !timers_only) {
    profile_.clock = "per-thread CPU timer (timer_create): perf_event is not allowed here (perf_event_paranoid " +
                     std::to_string(perf_event_paranoid()) + ")";
  }
  return {};
}

void Sampler::stop() {
  if (!running_) return;
  g_sampling.store(false);  // threads starting from now do not arm themselves...
  wait_for_guarded_sends(g_signal.load());  // ...and those arming now finish first
  adopt_self_armed();
  for (auto& [tid, state] : per_thread_) disarm(state);
  per_thread_.clear();
  drain();
  profile_.accounting.process_cpu_s = process_cpu_seconds() - cpu_at_start_;  // frozen from now on
  // Nothing stays queued after a profile: a thread that blocked the signal would hold it for good.
  discard_queued(g_signal.load(), on_sample_signal);
  running_ = false;
  profile_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - profile_.started).count();
}

bool Sampler::leave_out_if_blocking(pid_t tid, ThreadState& state) {
  const int sig = g_signal.load();
  auto signals = thread_signal_state(tid, sig);
  if (signals && !signals->blocked) return false;
  if (signals) {
    // What it has queued stays until stop() drops it: one signal at most (a perf event stops
    // after each overflow until the handler restarts it, a CPU timer queues one with an overrun
    // count), and dropping it now (SIG_IGN) would drop every other thread's, whose events
    // would then wait for a restart that never comes.
    profile_.unsampled[tid] = "blocks signal " + std::to_string(sig);
  }
  disarm(state);
  return true;
}

bool Sampler::arm(pid_t tid, ThreadState& state) {
  if (leave_out_if_blocking(tid, state)) return true;  // kept in the list, unarmed: re-checked later
  if (mode_ == SampleMode::kWall) return state.armed = true;
  // Guarded: a host thread taking the signal now waits for this arming, then stops its source.
  if (!begin_guarded_send(g_signal.load())) return true;  // unarmed: the next tick ends the profile
  const bool armed = arm_cpu(tid, state);
  end_guarded_send(g_signal.load());
  return armed;
}

bool Sampler::arm_cpu(pid_t tid, ThreadState& state) {
  state.armed = true;
  const uint64_t period_ns = 1000000000ull / static_cast<uint64_t>(hz_);
  if (use_perf_) {
    const int fd = open_perf_sampler(tid, tid, g_signal.load(), next_period_ns(period_ns));
    if (fd >= 0 && !remember_perf_fd(fd, tid)) {  // 4096 sampled threads: this one is left out
      ::close(fd);
      return state.armed = false;
    }
    if (fd >= 0 && !start_perf_sampler(fd)) {
      forget_perf_fd(fd);
      ::close(fd);
      return state.armed = false;
    }
    if (fd >= 0) {
      state.perf_fd = fd;
      state.perf_id = FdIdentity::of(fd).value_or(FdIdentity{});
      if (g_perf_user_only.load()) {  // the time in system calls, which the perf event does not see
        state.has_timer = open_cpu_timer(tid, g_signal.load(), next_period_ns(period_ns), period_ns, &state.timer,
                                         /*system_calls_only=*/true);
      }
      return true;
    }
    if (errno == ESRCH) return false;  // gone already
    use_perf_ = false;  // not allowed here (perf_event_paranoid, seccomp): timers from now on
    g_use_perf.store(false);
    g_perf_user_only.store(false);
    for (auto& [other, s] : per_thread_) {
      if (s.perf_fd >= 0) {
        disarm(s);
        arm_cpu(other, s);
      }
    }
  }
  if (!open_cpu_timer(tid, g_signal.load(), next_period_ns(period_ns), period_ns, &state.timer)) {
    return state.armed = false;
  }
  state.has_timer = true;
  return true;
}

void Sampler::disarm(ThreadState& state) {
  state.armed = false;
  state.awaiting = false;
  if (state.perf_fd >= 0) {
    const bool ours = state.perf_id.still_at(state.perf_fd);
    if (ours) ::ioctl(state.perf_fd, PERF_EVENT_IOC_DISABLE, 0);
    forget_perf_fd(state.perf_fd);
    // A handler restarting this event (restart_perf_event) finishes before the number is freed:
    // one that starts later finds it forgotten.
    wait_for_restarts(state.perf_fd);
    if (ours) ::close(state.perf_fd);
    state.perf_fd = -1;
  }
  if (state.has_timer) {
    forget_timer(state.timer);
    ::timer_delete(state.timer);
    state.has_timer = false;
  }
}

// Whether `tid` is arming itself or has armed itself since the last adoption.
static bool arming_itself(pid_t tid) {
  for (const auto& slot : g_self_armed) {
    if (slot.state.load() != 0 && slot.tid.load() == tid) return true;
  }
  return false;
}

void Sampler::adopt_self_armed() {
  for (auto& slot : g_self_armed) {
    if (slot.state.load() != 2) continue;
    ThreadState handed;
    handed.perf_fd = slot.perf_fd;
    handed.perf_id = slot.perf_id;
    handed.timer = slot.timer;
    handed.has_timer = slot.has_timer;
    handed.armed = true;
    slot.state.store(0);
    auto [it, added] = per_thread_.try_emplace(slot.tid.load());
    if (!added && it->second.armed) {
      disarm(handed);  // the agent armed it too, in the moment between its start and its own arming
      continue;
    }
    handed.last_cpu_s = it->second.last_cpu_s;
    it->second = std::move(handed);
  }
}

void Sampler::rescan_threads(bool check_every_thread) {
  last_rescan_ = std::chrono::steady_clock::now();
  threads_started_seen_ = g_threads_started.load();
  adopt_self_armed();  // first: a thread that armed itself is not armed again
  const pid_t self = current_tid();  // the agent's thread blocks every signal: never sample it
  for (auto& [tid, state] : per_thread_) state.seen = false;
  for (const auto& t : list_threads(::getpid())) {
    if (t.tid == self) continue;
    auto [it, added] = per_thread_.try_emplace(t.tid);
    ThreadState& state = it->second;
    state.seen = true;
    const bool ran = t.cpu_seconds != state.last_cpu_s;
    state.last_cpu_s = t.cpu_seconds;
    if (added && arming_itself(t.tid)) {
      state.last_cpu_s = -1;  // the next rescan adopts what it armed (adoption comes first)
    } else if (added) {
      if (!arm(t.tid, state)) per_thread_.erase(it);
    } else if (state.armed && (ran || check_every_thread)) {
      leave_out_if_blocking(t.tid, state);  // a thread queues perf signals only while it runs
    } else if (!state.armed && ran) {
      arm(t.tid, state);  // it may have unblocked the signal
    }
  }
  for (auto it = per_thread_.begin(); it != per_thread_.end();) {
    if (it->second.seen) {
      ++it;
      continue;
    }
    disarm(it->second);
    it = per_thread_.erase(it);
  }
}

void Sampler::give_up(std::string why) {
  stop();  // its discard of queued signals leaves alone a handler that is not ours
  profile_.problem = std::move(why);
}

// Wall mode: one signal outstanding per thread at most, so a thread that stops answering (it
// blocked the signal, or is stopped) never has more than one queued.
void Sampler::send_wall_signals() {
  const pid_t pid = ::getpid();
  const int sig = g_signal.load();
  for (auto& [tid, state] : per_thread_) {
    if (!state.armed) continue;
    uint64_t cpu = thread_cpu_ns(tid);
    if (cpu == state.last_cpu_ns && !state.last_pcs.empty()) {
      profile_.stacks[{tid, state.last_pcs, state.last_label}] += 1;  // idle since its last sample: same stack, no signal
      if (observer_) observer_(tid, state.last_label, state.last_pcs, 1);
      profile_.samples += 1;
      continue;
    }
    if (state.awaiting) {
      ++missed_wall_samples_;
      leave_out_if_blocking(tid, state);
      continue;
    }
    state.last_cpu_ns = cpu;
    if (send_guarded(pid, tid, sig)) {
      ++signals_sent_;
      state.awaiting = true;
    }
  }
}

void Sampler::tick() {
  if (!running_) return;
  // Right before the next signal, every time: the host may have reset or taken the signal.
  if (!handler_installed(g_signal.load(), on_sample_signal)) {
    return give_up(replaced_handler_words(g_signal.load()) + "; sampling stopped");
  }
  if (g_silenced_by_host.load()) {  // and put periscope's handler back since (a save and restore)
    return give_up("the host changed the action of signal " + std::to_string(g_signal.load()) +
                   " while sampling; sampling stopped");
  }
  auto now = std::chrono::steady_clock::now();
  // CPU mode (the kernel sends, every 50 ms a tick): signals piling up in the uid's queue mean a
  // thread blocks them, so look at every thread now. Wall mode keeps one outstanding per thread
  // and ticks up to 10,000 times a second: no /proc read there.
  const long queued = mode_ == SampleMode::kCpu ? queued_signals_of_uid() : -1;
  const bool piling_up = queued >= 0 && queued_at_start_ >= 0 && queued - queued_at_start_ > 64;
  // A thread started since the last rescan brings the next within 10 ms: in wall mode it is
  // signalled from then on; in CPU mode (it armed itself) its event is adopted and its slot freed.
  const bool started = g_threads_started.load() != threads_started_seen_ &&
                       now - last_rescan_ >= std::chrono::milliseconds(10);
  if (piling_up || started || now - last_rescan_ >= std::chrono::milliseconds(100)) rescan_threads(piling_up);
  if (mode_ == SampleMode::kWall) {
    const auto interval = std::chrono::nanoseconds(1000000000 / hz_);
    if (last_wall_tick_ != std::chrono::steady_clock::time_point{}) {
      const int64_t missed = (now - last_wall_tick_) / interval - 1;
      if (missed > 0) missed_wall_samples_ += static_cast<uint64_t>(missed) * per_thread_.size();
    }
    last_wall_tick_ = now;
    drain();  // first, so that threads that answered the last tick may be signalled again
    send_wall_signals();
  }
  drain();
}

void Sampler::drain() {
  SampleRing* ring = g_ring.load();
  if (!ring) return;
  ring->drain([this](const SampleRecord& r) {
    std::vector<uint64_t> pcs(r.pcs, r.pcs + r.depth);
    if (r.truncated) pcs.push_back(0);  // outermost marker: the stack was cut here
    if (mode_ == SampleMode::kWall) {
      auto it = per_thread_.find(r.tid);
      if (it != per_thread_.end()) {
        it->second.last_pcs = pcs;
        it->second.last_label = r.label;
        it->second.awaiting = false;
      }
    }
    if (observer_) observer_(r.tid, r.label, pcs, r.weight);
    profile_.stacks[{r.tid, std::move(pcs), r.label}] += r.weight;
    profile_.samples += r.weight;
  });
  RawProfile::Accounting& a = profile_.accounting;
  a.lost_buffer_full = ring->dropped() - dropped_at_start_;
  a.lost_in_handler = g_lost_reentry.load() - reentry_at_start_;
  a.lost_missed_ticks = missed_wall_samples_;
  a.handler_ns = g_handler_ns.load(std::memory_order_relaxed);
  profile_.lost = a.lost_buffer_full + a.lost_in_handler + a.lost_missed_ticks;
  if (mode_ == SampleMode::kCpu) signals_sent_ = profile_.samples;
}

const RawProfile& Sampler::peek() {
  drain();
  if (running_) {
    // Read here, not at every drain: the kernel sums it over every thread of the process.
    profile_.accounting.process_cpu_s = process_cpu_seconds() - cpu_at_start_;
    profile_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - profile_.started).count();
  }
  return profile_;
}

RawProfile Sampler::take() {
  peek();
  RawProfile out = std::move(profile_);
  profile_ = RawProfile{};
  profile_.mode = out.mode;
  profile_.hz = out.hz;
  profile_.clock = out.clock;
  profile_.started = std::chrono::steady_clock::now();
  profile_.unsampled = out.unsampled;  // still true of the threads that are left out
  return out;
}

void Sampler::reset_in_fork_child() {
  g_sampling.store(false);
  for (auto& slot : g_self_armed) {  // a parent's thread's; its perf descriptor is closed below
    if (slot.state.load(std::memory_order_relaxed) != 0) slot.state.store(0);
  }
  for (auto& slot : g_timers) {  // the parent's timers: fork does not copy them
    if (slot.load(std::memory_order_relaxed) != 0) slot.store(0);
  }
  adopt_signal_guards_in_fork_child();
  // Reads before writes: a fork child that writes to a page copies it, and fork cost is the host's.
  if (g_perf_fds_used.load() == 0) return;
  g_perf_fds_used.store(0);
  for (auto& slot : g_perf_fds) {
    if (slot.load(std::memory_order_relaxed) == 0) continue;
    int value = slot.exchange(0);
    if (value > 0 && value - 1 < kPerfFdFlags) g_perf_fd_owner[value - 1].store(0);
    if (value != 0 && fd_is_kind(value - 1, "anon_inode:[perf_event]")) ::close(value - 1);  // else the host's now
  }
}

}  // namespace periscope
