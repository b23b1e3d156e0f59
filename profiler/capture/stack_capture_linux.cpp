#include "profiler/capture/stack_capture.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "profiler/signal_delivery.h"
#include "profiler/capture/signal_unwind.h"

namespace periscope {

namespace {

enum SlotState : int { kIdle, kRequested, kWriting, kDone, kAbandoned };

struct Slot {
  std::atomic<pid_t> tid{0};
  std::atomic<int> state{kIdle};
  uint32_t depth = 0;
  bool truncated = false;
  uint64_t pcs[kMaxStackDepth];
};

struct Batch {
  explicit Batch(size_t n) : count(n), owned(new Slot[n]), slots(owned.get()) {}
  Batch(Slot* fixed, size_t n) : count(n), slots(fixed) {}
  size_t count;
  std::unique_ptr<Slot[]> owned;
  Slot* slots;
  size_t max_depth = kMaxStackDepth;
};

// A crash report's capture: static memory, touched only in a crash. Once it began, captures of
// the agent's thread publish nothing (and unpublish only their own batch).
constinit Slot g_crash_slots[StackCapture::kCrashThreads];
Batch g_crash_batch(g_crash_slots, 0);
std::atomic<bool> g_crashing{false};

std::atomic<Batch*> g_batch{nullptr};
std::atomic<int> g_handlers_running{0};
std::atomic<int> g_signal{0};
// Function-local statics, so they exist whenever asked (the agent may start from a constructor
// that runs before this file's globals are initialised). Pointers: a fork child replaces them.
std::mutex*& capture_mutex() {
  static std::mutex* mutex = new std::mutex;
  return mutex;
}
// Threads that did not answer last time (guarded by capture_mutex()).
std::set<pid_t>*& signal_may_be_pending() {
  static std::set<pid_t>* tids = new std::set<pid_t>;
  return tids;
}
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_handler = false;

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// async-signal-safe: unwinds the interrupted context of a signal handler into the slot.
void unwind_into(Slot& slot, size_t max_depth, void* ucontext) {
  slot.depth = static_cast<uint32_t>(unwind_signal_context(ucontext, slot.pcs, max_depth, &slot.truncated));
}

// async-signal-safe: atomics, gettid and unwind_into only; errno saved and restored.
void on_capture_signal(int, siginfo_t*, void* ucontext) {
  int saved_errno = errno;
  if (!t_in_handler) {  // libunwind is not re-entrant on one thread
    t_in_handler = true;
    g_handlers_running.fetch_add(1);
    if (Batch* batch = g_batch.load()) {
      const pid_t self = current_tid();
      for (size_t i = 0; i < batch->count; ++i) {
        Slot& slot = batch->slots[i];
        if (slot.tid.load(std::memory_order_relaxed) != self) continue;
        int expected = kRequested;
        if (slot.state.compare_exchange_strong(expected, kWriting)) {
          unwind_into(slot, batch->max_depth, ucontext);
          slot.state.store(kDone, std::memory_order_release);
        }
        break;
      }
    }
    g_handlers_running.fetch_sub(1);
    t_in_handler = false;
  }
  errno = saved_errno;
}

std::string why_no_answer(pid_t tid, int sig, std::chrono::milliseconds timeout) {
  auto state = thread_signal_state(tid, sig);
  if (!state) return "exited during capture";
  if (state->blocked) return "blocked signal " + std::to_string(sig) + " before it could answer; no stack";
  if (state->stopped) return "is stopped; no stack";
  return "did not answer within " + std::to_string(timeout.count()) + " ms";
}

bool signal_still_pending(pid_t tid, int sig) {
  auto state = thread_signal_state(tid, sig);
  return state && state->pending;
}

// Why `tid` must not be sent `sig` now, or empty when it will run our handler. Asked right before
// every tgkill: the host may reset dispositions or block signals at any time.
std::string reason_not_to_signal(pid_t tid, int sig, CapturedStack::Status* status) {
  *status = CapturedStack::Status::kNotSignalled;
  if (!handler_installed(sig, on_capture_signal)) return replaced_handler_words(sig) + "; not signalled";
  auto state = thread_signal_state(tid, sig);
  if (!state) {
    *status = CapturedStack::Status::kExited;
    return "exited during capture";
  }
  if (state->blocked) return "blocks signal " + std::to_string(sig) + "; not signalled";
  return {};
}

// Waits for handlers that may still be reading `batch`; false if one seems stuck for good.
bool wait_for_handlers_to_leave() {
  for (int i = 0; i < 1000; ++i) {
    if (g_handlers_running.load() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// The calling thread's own stack, no signal needed.
void capture_self(Slot& slot, size_t max_depth) {
  slot.depth = static_cast<uint32_t>(unwind_here(slot.pcs, max_depth, &slot.truncated));
}

}  // namespace

std::string StackCapture::install(int requested) {
  std::lock_guard lock(*capture_mutex());
  if (g_signal.load() != 0) return {};
  int sig = 0;
  auto error = install_realtime_handler(requested, SignalSearch::kFromBottom, "stack capture", on_capture_signal, &sig);
  if (error.empty()) {
    g_signal.store(sig);
    guard_signal(sig, on_capture_signal, nullptr);  // only tgkill sends it: the guard is enough
  }
  return error;
}

int StackCapture::signal_number() { return g_signal.load(); }

void StackCapture::uninstall() {
  std::lock_guard lock(*capture_mutex());
  const int sig = g_signal.exchange(0);
  if (sig == 0) return;
  wait_for_handlers_to_leave();
  (void)release_signal(sig, on_capture_signal);
}

void StackCapture::reset_in_fork_child() {
  adopt_signal_guards_in_fork_child();
  // The parent's agent thread may have held the lock or been changing the set: start with new
  // ones and leak the old. A batch it published belongs to threads that do not exist here.
  capture_mutex() = new std::mutex;
  signal_may_be_pending() = new std::set<pid_t>;
  g_batch.store(nullptr);
  g_handlers_running.store(0);
}

namespace {
std::atomic<uint64_t> g_signals_sent{0};
std::atomic<uint64_t> g_captured{0};
std::atomic<uint64_t> g_timed_out{0};
std::atomic<uint64_t> g_not_signalled{0};

void count_outcomes(const std::vector<CapturedStack>& out) {
  for (const auto& r : out) {
    if (r.status == CapturedStack::Status::kOk) g_captured.fetch_add(1, std::memory_order_relaxed);
    else if (r.status == CapturedStack::Status::kTimedOut) g_timed_out.fetch_add(1, std::memory_order_relaxed);
    else if (r.status == CapturedStack::Status::kNotSignalled) g_not_signalled.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

// async-signal-safe: atomics, tgkill, nanosleep.
bool StackCapture::capture_for_crash(const pid_t* tids, size_t n, int timeout_ms, CrashStackFn each, void* arg) {
  const int sig = g_signal.load();
  if (sig == 0 || !handler_installed(sig, on_capture_signal)) return false;
  n = n < kCrashThreads ? n : kCrashThreads;
  g_crashing.store(true);
  g_batch.store(nullptr);  // a capture in progress: its threads answer nobody now
  for (size_t i = 0; i < n; ++i) {
    g_crash_slots[i].tid.store(tids[i]);
    g_crash_slots[i].state.store(kRequested);
    g_crash_slots[i].depth = 0;
  }
  g_crash_batch.count = n;
  g_crash_batch.max_depth = kCrashDepth;
  g_batch.store(&g_crash_batch);
  const pid_t pid = ::getpid();
  for (size_t i = 0; i < n; ++i) {
    if (!send_guarded(pid, tids[i], sig)) g_crash_slots[i].state.store(kAbandoned);
  }
  for (int waited_ms = 0; waited_ms < timeout_ms; ++waited_ms) {
    bool all = true;
    for (size_t i = 0; i < n && all; ++i) {
      const int s = g_crash_slots[i].state.load(std::memory_order_acquire);
      all = s != kRequested && s != kWriting;
    }
    if (all) break;
    timespec one_ms{0, 1000 * 1000};
    ::nanosleep(&one_ms, nullptr);
  }
  for (size_t i = 0; i < n; ++i) {
    int expected = kRequested;
    g_crash_slots[i].state.compare_exchange_strong(expected, kAbandoned);
  }
  g_batch.store(nullptr);
  for (int i = 0; i < 100 && g_handlers_running.load() != 0; ++i) {  // one mid-unwind: 100 ms more
    timespec one_ms{0, 1000 * 1000};
    ::nanosleep(&one_ms, nullptr);
  }
  for (size_t i = 0; i < n; ++i) {
    const Slot& slot = g_crash_slots[i];
    const bool done = slot.state.load(std::memory_order_acquire) == kDone;
    each(arg, tids[i], slot.pcs, done ? slot.depth : 0, done && slot.truncated);
  }
  g_crashing.store(false);  // a host handler may recover from the crash: captures work again
  return true;
}

StackCapture::Counters StackCapture::counters() {
  return {g_signals_sent.load(std::memory_order_relaxed), g_captured.load(std::memory_order_relaxed),
          g_timed_out.load(std::memory_order_relaxed), g_not_signalled.load(std::memory_order_relaxed)};
}

std::vector<CapturedStack> StackCapture::capture(const std::vector<pid_t>& tids, std::chrono::milliseconds timeout,
                                                 size_t max_depth) {
  std::lock_guard lock(*capture_mutex());
  const int sig = g_signal.load();
  const pid_t pid = ::getpid();
  const pid_t self = current_tid();
  auto* batch = new Batch(tids.size());
  batch->max_depth = std::min(max_depth, kMaxStackDepth);
  std::vector<CapturedStack> out(tids.size());
  for (size_t i = 0; i < tids.size(); ++i) {
    out[i].tid = tids[i];
    batch->slots[i].tid.store(tids[i]);
    batch->slots[i].state.store(tids[i] == self || sig == 0 ? kIdle : kRequested);
  }
  Batch* none = nullptr;
  if (g_crashing.load() || !g_batch.compare_exchange_strong(none, batch)) {
    for (size_t i = 0; i < tids.size(); ++i) batch->slots[i].state.store(kAbandoned);  // a crash report runs
  }
  for (size_t i = 0; i < tids.size(); ++i) {
    Slot& slot = batch->slots[i];
    if (slot.state.load() == kAbandoned) continue;
    if (tids[i] == self) {
      capture_self(slot, batch->max_depth);
      slot.state.store(kDone);
    } else if (sig == 0) {
      out[i].status = CapturedStack::Status::kTimedOut;
      out[i].detail = "stack capture is not installed";
    } else if (signal_may_be_pending()->count(tids[i]) && signal_still_pending(tids[i], sig)) {
      slot.state.store(kAbandoned);  // one queued signal is enough; don't pile up more
    } else if (auto why = reason_not_to_signal(tids[i], sig, &out[i].status); !why.empty()) {
      slot.state.store(kAbandoned);
      out[i].detail = std::move(why);
    } else if (!send_guarded(pid, tids[i], sig)) {
      slot.state.store(kAbandoned);
      if (taken_by_host(sig)) {  // between the check and the send: a host thread's sigaction
        out[i].status = CapturedStack::Status::kNotSignalled;
        out[i].detail = replaced_handler_words(sig) + "; not signalled";
      } else {
        out[i].status = CapturedStack::Status::kExited;
        out[i].detail = errno == ESRCH ? "exited during capture" : std::string("tgkill: ") + std::strerror(errno);
      }
    } else {
      g_signals_sent.fetch_add(1, std::memory_order_relaxed);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto all_answered = [&] {
    for (size_t i = 0; i < tids.size(); ++i) {
      int s = batch->slots[i].state.load(std::memory_order_acquire);
      if (s == kRequested || s == kWriting) return false;
    }
    return true;
  };
  while (!all_answered() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (size_t i = 0; i < tids.size(); ++i) {
    // glibc blocks every signal in a thread that is exiting: one that blocked ours may be gone now.
    if (out[i].status == CapturedStack::Status::kNotSignalled && !thread_signal_state(tids[i], sig)) {
      out[i].status = CapturedStack::Status::kExited;
      out[i].detail = "exited during capture";
    }
    Slot& slot = batch->slots[i];
    int expected = kRequested;
    if (slot.state.compare_exchange_strong(expected, kAbandoned) || expected == kAbandoned) {
      if (out[i].detail.empty()) {
        out[i].status = CapturedStack::Status::kTimedOut;
        out[i].detail = why_no_answer(tids[i], sig, timeout);
        if (out[i].detail == "exited during capture") out[i].status = CapturedStack::Status::kExited;
      }
      signal_may_be_pending()->insert(tids[i]);
    }
  }
  Batch* published = batch;
  g_batch.compare_exchange_strong(published, nullptr);  // a crash report's batch stays
  if (!wait_for_handlers_to_leave()) {
    // A handler is stuck mid-unwind (its thread was stopped): leave the batch to it, forever.
    for (auto& r : out) {
      if (r.detail.empty()) r.status = CapturedStack::Status::kTimedOut, r.detail = "capture abandoned";
    }
    count_outcomes(out);
    return out;
  }
  for (size_t i = 0; i < tids.size(); ++i) {
    Slot& slot = batch->slots[i];
    if (slot.state.load() != kDone) continue;
    signal_may_be_pending()->erase(tids[i]);
    out[i].pcs.assign(slot.pcs, slot.pcs + slot.depth);
    out[i].truncated = slot.truncated;
    out[i].status = CapturedStack::Status::kOk;
    out[i].detail.clear();
  }
  delete batch;
  count_outcomes(out);
  return out;
}

}  // namespace periscope
