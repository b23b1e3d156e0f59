// pthread_create() as the host calls it. While a CPU profile runs, a new thread arms its own
// sampling before the host's start routine runs (Sampler::arm_new_thread): a thread that lives
// 10 ms is otherwise gone before the agent's next rescan (100 ms) and its CPU time never sampled.
// While the crash report is on, a new thread gets an alternate signal stack for the time it runs
// (alt_stacks.h: a stack overflow still gets its report). With neither, the call passes straight
// through after two atomic loads.
//
// Exported from libperiscope.so (exports.map). Not built into sanitizer builds: ASan and TSan
// interpose pthread_create themselves and start their own bookkeeping in the new thread, which
// code of ours must not run before.
#include <atomic>
#include <csignal>
#include <cstddef>
#include <dlfcn.h>
#include <new>
#include <pthread.h>

#include "agent/src/fork_handling.h"
#include "agent/src/crash/alt_stacks.h"
#include "profiler/capture/sampler.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

namespace {

using PthreadCreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

PthreadCreateFn g_next_pthread_create = nullptr;

// dlsym allocates: done at load (and again if a constructor ran before ours and called in).
PERISCOPE_FORK_PATH PthreadCreateFn next_pthread_create() {
  if (!g_next_pthread_create) {
    g_next_pthread_create = reinterpret_cast<PthreadCreateFn>(::dlsym(RTLD_NEXT, "pthread_create"));
  }
  return g_next_pthread_create;
}

__attribute__((constructor(101))) void resolve_at_load() { (void)next_pthread_create(); }

struct HostStart {
  void* (*routine)(void*);
  void* arg;
  bool sampled;
  bool alt_stack;
};

// What the creator hands the new thread, in a slot of a static pool: the new thread copies it out
// and frees the slot, without a call to free. glibc gives a thread a malloc arena of its own at its
// first malloc or free: a host thread that never allocates would get one for the agent's sake,
// which every fork then locks, unlocks and copies (two page faults a fork, each such thread).
// All slots in flight (256 threads being started at once): the heap.
constexpr unsigned kStartSlots = 256;
struct StartSlot {
  std::atomic<bool> used{false};
  HostStart start{};
};
StartSlot g_start_slots[kStartSlots];
std::atomic<unsigned> g_next_start_slot{0};

PERISCOPE_FORK_PATH HostStart* hand_over(const HostStart& start) {
  const unsigned first = g_next_start_slot.fetch_add(1, std::memory_order_relaxed);
  for (unsigned i = 0; i < kStartSlots; ++i) {
    StartSlot& slot = g_start_slots[(first + i) % kStartSlots];
    bool expected = false;
    if (!slot.used.load(std::memory_order_relaxed) && slot.used.compare_exchange_strong(expected, true)) {
      slot.start = start;
      return &slot.start;
    }
  }
  return new (std::nothrow) HostStart(start);
}

bool in_pool(const HostStart* p) {
  return p >= &g_start_slots[0].start && p <= &g_start_slots[kStartSlots - 1].start;
}

HostStart take_over(HostStart* p) {
  const HostStart start = *p;
  if (!in_pool(p)) {
    delete p;
    return start;
  }
  reinterpret_cast<StartSlot*>(reinterpret_cast<char*>(p) - offsetof(StartSlot, start))->used.store(false);
  return start;
}

// The host's start routine, after what the thread needs first. The alternate stack goes back to
// the pool when the routine returns, and on pthread_exit or cancellation (the unwind runs the
// destructor).
void* start_host_routine(void* p) {
  const HostStart start = take_over(static_cast<HostStart*>(p));
  if (start.sampled) periscope::Sampler::arm_new_thread();
  if (!start.alt_stack) return start.routine(start.arg);
  periscope::agent::ThreadAltStack alt_stack;
  return start.routine(start.arg);
}

// A thread started with SIGSEGV blocked (the agent's own threads block every signal) never runs a
// handler for it: the kernel kills the process with the default action instead. It needs no
// alternate stack. Its mask is the one its attributes give (pthread_attr_setsigmask_np), else its
// creator's (the agent blocks every signal around creating its threads).
PERISCOPE_FORK_PATH bool segv_reaches_handlers_of_new_thread(const pthread_attr_t* attr) {
  sigset_t mask;
  if (attr && pthread_attr_getsigmask_np(attr, &mask) == 0) return !sigismember(&mask, SIGSEGV);
  return ::pthread_sigmask(SIG_BLOCK, nullptr, &mask) != 0 || !sigismember(&mask, SIGSEGV);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) PERISCOPE_FORK_PATH int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                                     void* (*routine)(void*), void* arg) {
  PthreadCreateFn next = next_pthread_create();
  const bool sampled = periscope::Sampler::samples_new_threads();
  const bool alt_stack = periscope::agent::new_threads_want_alt_stacks() && segv_reaches_handlers_of_new_thread(attr);
  if (!sampled && !alt_stack) return next(thread, attr, routine, arg);
  HostStart* start = hand_over(HostStart{routine, arg, sampled, alt_stack});
  if (!start) return next(thread, attr, routine, arg);
  const int r = next(thread, attr, start_host_routine, start);
  if (r != 0) (void)take_over(start);
  return r;
}

#endif
