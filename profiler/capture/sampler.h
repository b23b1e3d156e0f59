// The sampling profiler's engine in the host: per-thread CPU-time sampling (perf_event task-clock
// with the signal sent to the sampled thread; per-thread CPU timers where perf_event is not
// allowed) or wall-clock sampling of every thread, running or blocked. Signal handlers unwind
// with libunwind into a SampleRing; the agent's thread drains it into a Profile.
//
// Threading: install() once; start/stop/tick/drain from the agent's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "profiler/capture/sample_ring.h"
#include "profiler/sampling_rate.h"

namespace periscope {

enum class SampleMode { kCpu, kWall };

// Every distinct (thread, stack, label) with its sample count.
struct RawProfile {
  SampleMode mode = SampleMode::kCpu;
  int hz = kDefaultSamplingHz;
  std::string clock;  // how samples were taken, in words
  std::chrono::steady_clock::time_point started;
  double seconds = 0;
  uint64_t samples = 0;  // weighted
  uint64_t lost = 0;     // dropped: ring full, taken inside our own handler, or (wall) a tick missed
  struct Key {
    pid_t tid;
    std::vector<uint64_t> pcs;  // innermost first
    uint32_t label = 0;         // the thread's sample label (sample_label.h): the request it served
    bool operator==(const Key& o) const { return tid == o.tid && pcs == o.pcs && label == o.label; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  std::unordered_map<Key, uint64_t, KeyHash> stacks;
  // Threads that were not sampled (all or part of the time), and why: "blocks signal 64".
  std::map<pid_t, std::string> unsampled;
  // Why sampling stopped before it was asked to, or empty: "the host replaced ...".
  std::string problem;
  // What sampling cost and missed, counted since the sampler started (a window subtracts its base).
  struct Accounting {
    uint64_t lost_buffer_full = 0;   // the ring was full: the agent's thread drained too late
    uint64_t lost_in_handler = 0;    // a signal arrived while the handler ran on that thread
    uint64_t lost_missed_ticks = 0;  // wall mode: ticks the agent's thread was too busy to give
    uint64_t handler_ns = 0;         // time spent in the sampling handler, all threads
    double process_cpu_s = 0;        // the process's CPU time (all threads, kernel included)
  } accounting;
};

class Sampler {
 public:
  // Installs the handler on `signal` (0: a free real-time signal). Empty on success, else why not.
  [[nodiscard]] static std::string install(int signal);
  static int signal_number();
  // Gives the signal back (the default action again, nothing queued) once no sampler runs; an
  // ejected agent. install() may take it anew.
  static void uninstall();
  // The handler's own cost per sample since the last start: quantile 0.5 is the median.
  static double handler_cost_ns(double quantile);

  Sampler();
  ~Sampler();
  // `timers_only`: skip perf_event and use per-thread CPU timers (where perf_event is restricted).
  [[nodiscard]] std::string start(SampleMode mode, int hz, bool timers_only = false);
  void stop();
  bool running() const { return running_; }
  // Agent thread, often: CPU mode every ~50 ms (new threads, dead threads, drain); wall mode
  // 1/hz (signal the threads that ran, count the idle ones at their last stack, drain).
  void tick();
  // The profile so far (drains first). Taking it resets the sampler's copy.
  RawProfile take();
  const RawProfile& peek();
  size_t threads() const { return per_thread_.size(); }
  uint64_t signals_sent() const { return signals_sent_; }
  // Told of every sample as it is counted (drained, or in wall mode an idle thread counted again
  // at its last stack), on the agent's thread: the watchdog keeps the samples of slow requests.
  using Observer = std::function<void(pid_t tid, uint32_t label, const std::vector<uint64_t>& pcs, uint64_t weight)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // In a fork child: the parent's sampling state is not ours; close its perf descriptors.
  static void reset_in_fork_child();
  // On a thread that has just started (before the host's start routine; agent/src/hooks/): while a
  // CPU profile runs, arms the thread itself so it is sampled from its first millisecond, and
  // hands its perf event or timer to the agent's thread. A thread that blocks the signal is left
  // to the rescan (which names it). Costs one atomic load when nothing samples.
  static void arm_new_thread();
  // Whether a CPU profile runs, so that new threads should arm themselves (one atomic load).
  static bool samples_new_threads();

 private:
  struct ThreadState;
  void rescan_threads(bool check_every_thread = false);
  void adopt_self_armed();  // takes over what threads that armed themselves handed over
  void drain();
  bool arm(pid_t tid, ThreadState& state);
  bool arm_cpu(pid_t tid, ThreadState& state);  // arm's CPU-mode half, inside the send guard
  void disarm(ThreadState& state);
  // Whether `tid` blocks the sampling signal now; if so it is disarmed and named in the profile.
  bool leave_out_if_blocking(pid_t tid, ThreadState& state);
  void give_up(std::string why);  // the host took the signal: stop sampling, keep what was taken
  void send_wall_signals();

  bool running_ = false;
  SampleMode mode_ = SampleMode::kCpu;
  int hz_ = kDefaultSamplingHz;
  bool use_perf_ = true;
  RawProfile profile_;
  std::map<pid_t, ThreadState> per_thread_;
  std::chrono::steady_clock::time_point last_rescan_;
  uint64_t signals_sent_ = 0;
  uint64_t threads_started_seen_ = 0;  // g_threads_started at the last rescan
  uint64_t dropped_at_start_ = 0;  // the ring's drop count when sampling started
  uint64_t reentry_at_start_ = 0;  // samples lost inside the handler, likewise
  double cpu_at_start_ = 0;        // the process's CPU seconds when sampling started
  long queued_at_start_ = 0;     // the uid's queued signals when sampling started (SigQ)
  // Wall mode: ticks the agent's thread was too busy to give, counted as one lost sample per
  // thread each, so a busy agent shows in "lost" instead of silently thinning the profile.
  std::chrono::steady_clock::time_point last_wall_tick_;
  uint64_t missed_wall_samples_ = 0;
  Observer observer_;
};

}  // namespace periscope
