#include "agent/src/crash/alt_stacks.h"

#include <atomic>
#include <csignal>
#include <mutex>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/src/fork_handling.h"

namespace periscope::agent {

namespace {

std::atomic<bool> g_want{false};
alignas(64) char g_main_alt_stack[kAltStackBytes];

// Stacks of threads that ended, for the next ones (a bounded list: beyond it, unmapped).
constexpr size_t kPoolSize = 1024;
std::mutex g_pool_mutex;
void* g_pool[kPoolSize];
size_t g_pooled = 0;

bool has_alt_stack() {
  stack_t current{};
  return ::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE);
}

bool use(void* stack) {
  stack_t s{};
  s.ss_sp = stack;
  s.ss_size = kAltStackBytes;
  return ::sigaltstack(&s, nullptr) == 0;
}

void* take_stack() {
  {
    std::lock_guard lock(g_pool_mutex);
    if (g_pooled > 0) return g_pool[--g_pooled];
  }
  void* p = ::mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void give_back(void* stack) {
  {
    std::lock_guard lock(g_pool_mutex);
    if (g_pooled < kPoolSize) {
      g_pool[g_pooled++] = stack;
      return;
    }
  }
  ::munmap(stack, kAltStackBytes);
}

}  // namespace

void give_main_thread_alt_stack() {
  if (::syscall(SYS_gettid) != ::getpid() || has_alt_stack()) return;
  (void)use(g_main_alt_stack);
}

PERISCOPE_FORK_PATH void reset_alt_stack_pool_in_fork_child() { reset_if_held_in_fork_child(g_pool_mutex); }

PERISCOPE_FORK_PATH bool new_threads_want_alt_stacks() { return g_want.load(std::memory_order_relaxed); }
void set_new_threads_want_alt_stacks(bool want) { g_want.store(want); }

ThreadAltStack::ThreadAltStack() {
  if (has_alt_stack()) return;
  stack_ = take_stack();
  if (stack_ && !use(stack_)) {
    give_back(stack_);
    stack_ = nullptr;
  }
}

ThreadAltStack::~ThreadAltStack() {
  if (!stack_) return;
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0) return;
  if (current.ss_sp == stack_ && !(current.ss_flags & SS_DISABLE)) {
    if (current.ss_flags & SS_ONSTACK) return;  // a handler runs on it now: it stays the thread's
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    if (::sigaltstack(&off, nullptr) != 0) return;
  }
  give_back(stack_);  // ours is not in use (the host may have put its own in place: that stays)
}

}  // namespace periscope::agent
