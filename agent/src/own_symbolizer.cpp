#include "agent/src/own_symbolizer.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <deque>
#include <exception>
#include <malloc.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <thread>
#include <unistd.h>

#include "agent/src/logging.h"
#include "manhole/quiet_thread.h"

namespace periscope::agent {

namespace {

constexpr auto kIdleBeforeRelease = std::chrono::seconds(10);

// Everything of one process. A fork child makes its own and leaks the inherited one: a parent
// thread may have held the lock or been mid-lookup, and the child has no symbolizer thread.
struct State {
  pid_t owner = ::getpid();
  std::mutex lock;  // guards symbolizer and last_use
  Symbolizer* symbolizer = nullptr;
  std::chrono::steady_clock::time_point last_use;

  std::mutex queue_lock;  // guards the rest
  std::condition_variable wake;
  std::deque<std::function<void(Symbolizer&)>> jobs;
  bool thread_running = false;
};

// No lock of its own: a thread of the parent may have held it at the fork.
State& state() {
  static std::atomic<State*> current{nullptr};
  State* s = current.load(std::memory_order_acquire);
  if (s && s->owner == ::getpid()) return *s;
  State* fresh = new State;
  if (current.compare_exchange_strong(s, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread of this process made one first
  return *s;
}

void run_one(const std::function<void(Symbolizer&)>& job) {
  try {
    auto held = own_symbolizer_lock();
    job(own_symbolizer(held));
  } catch (const std::exception& e) {
    log_line(std::string("agent: a symbolizing job failed and was skipped: ") + e.what());
  } catch (...) {
    log_line("agent: a symbolizing job failed and was skipped");
  }
}

void run_jobs(State* s) {
  ::pthread_setname_np(::pthread_self(), "periscope-sym");
  std::unique_lock queue(s->queue_lock);
  for (;;) {
    if (s->jobs.empty() && !s->wake.wait_for(queue, kIdleBeforeRelease, [s] { return !s->jobs.empty(); })) {
      s->thread_running = false;
      queue.unlock();
      release_own_symbolizer_if_idle();
      return;
    }
    auto job = std::move(s->jobs.front());
    s->jobs.pop_front();
    queue.unlock();
    run_one(job);
    queue.lock();
  }
}

}  // namespace

std::unique_lock<std::mutex> own_symbolizer_lock() { return std::unique_lock(state().lock); }

Symbolizer& own_symbolizer(const std::unique_lock<std::mutex>&) {
  State& s = state();
  if (!s.symbolizer) s.symbolizer = new Symbolizer(::getpid());
  s.last_use = std::chrono::steady_clock::now();
  return *s.symbolizer;
}

void symbolize_in_background(std::function<void(Symbolizer&)> job) {
  State& s = state();
  {
    std::lock_guard queue(s.queue_lock);
    s.jobs.push_back(std::move(job));
    if (s.thread_running) {
      s.wake.notify_one();
      return;
    }
    try {
      manhole::start_quiet_thread([&s] { run_jobs(&s); }).detach();  // it ends by itself
      s.thread_running = true;
    } catch (const std::exception& e) {
      log_line(std::string("agent: no symbolizer thread (") + e.what() + "); symbolizing on the caller's");
    }
    if (s.thread_running) return;
  }
  // No thread: the jobs run here, late rather than never.
  for (;;) {
    std::unique_lock queue(s.queue_lock);
    if (s.jobs.empty() || s.thread_running) return;
    auto next = std::move(s.jobs.front());
    s.jobs.pop_front();
    queue.unlock();
    run_one(next);
  }
}

void warm_own_symbolizer() {
  symbolize_in_background([](Symbolizer& symbolizer) {
    const uint64_t addresses[] = {
        static_cast<uint64_t>(::getauxval(AT_ENTRY)),         // the main program
        reinterpret_cast<uint64_t>(&::clock_gettime),         // libc
        reinterpret_cast<uint64_t>(&std::current_exception),  // libstdc++
    };
    for (uint64_t pc : addresses) {
      if (pc != 0) (void)symbolizer.symbolize(pc, false);
    }
  });
}

void release_own_symbolizer_if_idle() {
  State& s = state();
  std::unique_lock held(s.lock, std::try_to_lock);
  if (!held.owns_lock() || !s.symbolizer) return;
  if (std::chrono::steady_clock::now() - s.last_use < kIdleBeforeRelease) return;
  delete s.symbolizer;  // closes the ELF and debug files, unmaps them, frees libdw's caches
  s.symbolizer = nullptr;
  ::malloc_trim(0);
}

}  // namespace periscope::agent
