// The signal path in-process (profiler/capture/): the sample ring under concurrent producers,
// stack capture of threads in known frames, and the sampler's sample weights against the CPU and
// wall time the threads really spent.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <map>
#include <pthread.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "profiler/capture/sample_ring.h"
#include "profiler/capture/sampler.h"
#include "profiler/capture/stack_capture.h"
#include "profiler/symbolizer.h"
#include "profiler/thread_stacks.h"

namespace periscope {
namespace {

pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// ---- SampleRing: many producers (signal handlers on many threads), one consumer.

TEST(SampleRing, ConcurrentProducersLoseNothingButWhatTheyCountAsDropped) {
  constexpr int kProducers = 4;
  constexpr uint64_t kEach = 200000;
  SampleRing ring(1024);  // small: producers outrun the consumer and some pushes find it full
  std::atomic<int> running{kProducers};
  std::vector<uint64_t> last_seen(kProducers, 0);
  uint64_t received = 0;
  bool in_order = true;
  std::vector<std::thread> producers;
  std::vector<uint64_t> pushed(kProducers, 0);
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t seq = 1; seq <= kEach; ++seq) {
        SampleRing::Cell* cell = ring.begin_push();
        if (!cell) continue;  // full: dropped and counted by the ring
        cell->record.tid = p;
        cell->record.depth = 1;
        cell->record.pcs[0] = seq;
        ring.commit_push(cell);
        ++pushed[static_cast<size_t>(p)];
      }
      --running;
    });
  }
  auto consume = [&](const SampleRecord& r) {
    auto& last = last_seen[static_cast<size_t>(r.tid)];
    if (r.pcs[0] <= last) in_order = false;  // each producer's records arrive in its order, once
    last = r.pcs[0];
    ++received;
  };
  while (running.load() > 0) ring.drain(consume);
  for (auto& t : producers) t.join();
  ring.drain(consume);
  uint64_t total_pushed = 0;
  for (uint64_t n : pushed) total_pushed += n;
  EXPECT_TRUE(in_order);
  EXPECT_EQ(received, total_pushed);
  EXPECT_EQ(received + ring.dropped(), kProducers * kEach);
}

TEST(SampleRing, AFullRingRefusesAndCountsUntilDrained) {
  SampleRing ring(8);
  for (int i = 0; i < 8; ++i) {
    SampleRing::Cell* cell = ring.begin_push();
    ASSERT_NE(cell, nullptr) << i;
    ring.commit_push(cell);
  }
  EXPECT_EQ(ring.begin_push(), nullptr);
  EXPECT_EQ(ring.dropped(), 1u);
  EXPECT_EQ(ring.drain([](const SampleRecord&) {}), 8u);
  EXPECT_NE(ring.begin_push(), nullptr);
}

// ---- StackCapture: the handler unwinds the thread where it is.

std::atomic<bool> g_keep_parked{true};

__attribute__((noinline)) void park_in_known_frame(std::atomic<int>* parked) {
  parked->store(this_tid());
  while (g_keep_parked.load(std::memory_order_relaxed)) {
    asm volatile("" ::: "memory");
  }
}

__attribute__((noinline)) void park_with_signals_blocked(std::atomic<int>* parked) {
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  park_in_known_frame(parked);
}

class Capture : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(StackCapture::install(0), "");
    g_keep_parked = true;
  }
  void TearDown() override {
    g_keep_parked = false;
    for (auto& t : threads_) t.join();
  }
  pid_t start(void (*park)(std::atomic<int>*)) {
    auto* parked = new std::atomic<int>{0};  // one per thread, leaked with the test
    threads_.emplace_back([park, parked] { park(parked); });
    while (parked->load() == 0) std::this_thread::yield();
    return parked->load();
  }
  std::vector<std::thread> threads_;
};

TEST_F(Capture, AThreadIsCaughtInTheFunctionItRuns) {
  const pid_t tid = start(park_in_known_frame);
  auto out = StackCapture::capture({tid}, std::chrono::milliseconds(2000));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].status, CapturedStack::Status::kOk) << out[0].detail;
  Symbolizer symbolizer(::getpid());
  auto frames = symbolize_captured(out[0].pcs, symbolizer);
  ASSERT_FALSE(frames.empty());
  // Innermost, or just under what it inlined (an unoptimized build keeps std::atomic's load).
  auto parked = std::find_if(frames.begin(), frames.begin() + std::min<size_t>(frames.size(), 4),
                             [](const Frame& f) { return f.function.find("park_in_known_frame") != std::string::npos; });
  ASSERT_NE(parked, frames.begin() + std::min<size_t>(frames.size(), 4)) << describe_frame(frames[0]);
  EXPECT_EQ(parked->file.substr(parked->file.rfind('/') + 1), "capture_test.cpp");
}

TEST_F(Capture, TheCallingThreadCapturesItselfWithoutASignal) {
  const uint64_t sent_before = StackCapture::counters().signals_sent;
  auto out = StackCapture::capture({this_tid()}, std::chrono::milliseconds(100));
  ASSERT_EQ(out[0].status, CapturedStack::Status::kOk) << out[0].detail;
  EXPECT_GE(out[0].pcs.size(), 3u);
  EXPECT_EQ(StackCapture::counters().signals_sent, sent_before);
}

TEST_F(Capture, AThreadThatBlocksTheSignalIsNotSignalledAndSaysWhy) {
  const pid_t tid = start(park_with_signals_blocked);
  const uint64_t sent_before = StackCapture::counters().signals_sent;
  auto out = StackCapture::capture({tid}, std::chrono::milliseconds(100));
  EXPECT_EQ(out[0].status, CapturedStack::Status::kNotSignalled);
  EXPECT_NE(out[0].detail.find("blocks signal " + std::to_string(StackCapture::signal_number())), std::string::npos)
      << out[0].detail;
  EXPECT_EQ(StackCapture::counters().signals_sent, sent_before) << "nothing queued to it";
}

TEST_F(Capture, AThreadThatIsGoneIsReportedExited) {
  pid_t gone = 0;
  std::thread([&] { gone = this_tid(); }).join();
  auto out = StackCapture::capture({gone}, std::chrono::milliseconds(100));
  EXPECT_EQ(out[0].status, CapturedStack::Status::kExited) << out[0].detail;
}

// ---- Sampler: each sample stands for 1/hz of the time the thread spent.

__attribute__((noinline)) double spin_for_cpu(double seconds) {
  const double until = thread_cpu_seconds() + seconds;
  double spent = 0;
  while ((spent = thread_cpu_seconds()) < until) {
  }
  return spent;
}

__attribute__((noinline)) void sleep_in_known_frame(std::chrono::milliseconds how_long) {
  std::this_thread::sleep_for(how_long);
}

uint64_t samples_of(const RawProfile& profile, pid_t tid, const char* function, uint64_t* in_function) {
  Symbolizer symbolizer(::getpid());
  uint64_t total = 0;
  *in_function = 0;
  for (const auto& [key, count] : profile.stacks) {
    if (key.tid != tid) continue;
    total += count;
    for (const Frame& f : symbolize_captured(key.pcs, symbolizer)) {
      if (f.function.find(function) != std::string::npos) {
        *in_function += count;
        break;
      }
    }
  }
  return total;
}

class SamplerWeights : public testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(Sampler::install(0), ""); }
};

TEST_F(SamplerWeights, CpuSamplesWeighTheThreadsCpuTime) {
  constexpr int kHz = 250;
  Sampler sampler;
  ASSERT_EQ(sampler.start(SampleMode::kCpu, kHz), "");
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  double cpu = 0;
  std::thread spinner([&] {
    tid = this_tid();
    const double start = thread_cpu_seconds();
    cpu = spin_for_cpu(2.0) - start;
    done = true;
  });
  while (!done) {
    sampler.tick();  // the agent's thread does this every ~50 ms: new threads are armed here
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  spinner.join();
  sampler.stop();
  RawProfile profile = sampler.take();
  uint64_t in_spin = 0;
  const uint64_t samples = samples_of(profile, tid, "spin_for_cpu", &in_spin);
  // 500 for 2 s. Periods are random in runs of ~16 equal ones, so the count varies by ~5% (sd) at
  // 500 samples; the thread is armed at the first rescan after it starts (up to 100 ms late).
  const double expected = cpu * kHz;
  EXPECT_GT(static_cast<double>(samples), 0.7 * expected) << samples << " samples for " << cpu << " s; "
                                                            << profile.clock << "; lost " << profile.lost;
  EXPECT_LT(static_cast<double>(samples), 1.3 * expected) << samples << " samples for " << cpu << " s; " << profile.clock;
  EXPECT_GT(static_cast<double>(in_spin), 0.9 * static_cast<double>(samples)) << "the spinner was in spin_for_cpu";
}

TEST_F(SamplerWeights, WallSamplesCountASleepingThreadOncePerTick) {
  constexpr int kHz = 100;
  Sampler sampler;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread sleeper([&] {
    tid = this_tid();
    sleep_in_known_frame(std::chrono::milliseconds(1500));
    done = true;
  });
  while (tid == 0) std::this_thread::yield();
  ASSERT_EQ(sampler.start(SampleMode::kWall, kHz), "");
  uint64_t ticks = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
  while (std::chrono::steady_clock::now() < until) {
    sampler.tick();
    ++ticks;
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 / kHz));
  }
  sampler.stop();
  RawProfile profile = sampler.take();
  sleeper.join();
  uint64_t in_sleep = 0;
  const uint64_t samples = samples_of(profile, tid, "sleep_in_known_frame", &in_sleep);
  // Every tick counts the sleeper once (weight 1), at the stack it last showed; a tick missed by a
  // busy machine is counted as lost instead.
  EXPECT_LE(samples, ticks + 1);
  EXPECT_GE(samples + profile.lost, ticks / 2) << "ticks " << ticks;
  EXPECT_GT(samples, 0u);
  EXPECT_GT(static_cast<double>(in_sleep), 0.9 * static_cast<double>(samples)) << "asleep in sleep_in_known_frame";
}

}  // namespace
}  // namespace periscope
