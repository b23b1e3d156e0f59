// The slow-request watchdog's state machine on an io_context of the test's own: a request is in
// flight, turns slow at its threshold (a report with the stack of the thread serving it, again
// every interval), and finishes with its real duration; fast requests leave nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "agent/src/own_symbolizer.h"
#include "agent/src/watchdog/fast_clock.h"
#include "agent/src/watchdog/request_table.h"
#include "agent/src/watchdog/watchdog.h"
#include "profiler/capture/stack_capture.h"

namespace periscope::agent {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::atomic<bool> g_keep_serving{false};

__attribute__((noinline)) void serve_slow_checkout(RequestTable& table, std::atomic<bool>* begun) {
  RequestSlot* slot = table.begin("checkout", 42);
  begun->store(true);
  while (g_keep_serving.load(std::memory_order_relaxed)) {
    asm volatile("" ::: "memory");
  }
  table.end(slot);
}

class WatchdogStates : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(StackCapture::install(0), "");
    init_fast_clock();
    WatchdogConfig config;
    config.scan_interval = 5ms;
    config.capture_interval = 40ms;
    config.capture_timeout = 2000ms;
    watchdog_ = std::make_unique<agent::Watchdog>(io_, table_, config);
    asio::post(io_, [this] { watchdog_->start(); });
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    g_keep_serving = false;
    if (host_.joinable()) host_.join();
    asio::post(io_, [this] { watchdog_->stop(); });
    work_.reset();
    io_thread_.join();
  }
  // Watchdog reads happen on its io thread, as the agent's commands do.
  template <typename F>
  auto on_io(F f) {
    std::promise<decltype(f())> result;
    asio::post(io_, [&] { result.set_value(f()); });
    return result.get_future().get();
  }
  SlowReportList reports() {
    return on_io([this] { return watchdog_->reports_since(0); });
  }
  InflightList inflight() {
    return on_io([this] { return watchdog_->inflight(10); });
  }

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  RequestTable table_{{64, 10, 60}};  // threshold 60 ms
  std::unique_ptr<agent::Watchdog> watchdog_;
  std::thread io_thread_;
  std::thread host_;
};

bool eventually(const std::function<bool()>& condition) {
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

TEST_F(WatchdogStates, ARequestIsInFlightThenSlowWithItsStackThenFinished) {
  g_keep_serving = true;
  std::atomic<bool> begun{false};
  host_ = std::thread([&] { serve_slow_checkout(table_, &begun); });
  while (!begun) std::this_thread::yield();

  InflightList now = inflight();
  ASSERT_EQ(now.total, 1u);
  EXPECT_EQ(now.oldest[0].name, "checkout");
  EXPECT_EQ(now.oldest[0].id, 42u);
  EXPECT_EQ(now.oldest[0].threshold_ms, 60);

  ASSERT_TRUE(eventually([&] { return !reports().reports.empty(); })) << "turns slow at 60 ms";
  auto captures = [](const SlowReport& r) {
    int n = 0;
    for (const auto& s : r.stacks) n += s.count;
    return n;
  };
  ASSERT_TRUE(eventually([&] {
    auto r = reports();
    return r.reports.size() == 1 && captures(r.reports[0]) >= 2;
  })) << "captured again every 40 ms (identical stacks collapse with a count)";
  SlowReport running = reports().reports[0];
  EXPECT_FALSE(running.finished);
  EXPECT_TRUE(inflight().oldest[0].slow);
  EXPECT_GE(running.duration_ms, 60.0);
  const SlowStack& stack = running.stacks[0];
  ASSERT_TRUE(stack.error.empty()) << stack.error;
  bool in_checkout = false;
  for (const Frame& f : stack.frames) in_checkout |= f.function.find("serve_slow_checkout") != std::string::npos;
  EXPECT_TRUE(in_checkout) << "captured on the thread serving it";

  g_keep_serving = false;
  host_.join();
  ASSERT_TRUE(eventually([&] { return reports().reports[0].finished; }));
  SlowReport finished = reports().reports[0];
  EXPECT_GE(finished.duration_ms, running.duration_ms);
  EXPECT_EQ(inflight().total, 0u);
  EXPECT_EQ(reports().next_seq, 2u) << "one report, not one per scan";
}

// Loading debug information can take seconds on a starved core: the scans, and the captures of
// requests that turn slow meanwhile, must not wait for it. The symbolizer held here stands for one
// busy loading.
TEST_F(WatchdogStates, ScansAndCapturesGoOnWhileTheSymbolizerIsBusy) {
  auto busy = own_symbolizer_lock();
  g_keep_serving = true;
  std::atomic<bool> begun{false};
  host_ = std::thread([&] { serve_slow_checkout(table_, &begun); });
  while (!begun) std::this_thread::yield();
  ASSERT_TRUE(eventually([&] { return inflight().oldest[0].slow; })) << "taken over at 60 ms";
  const uint64_t scans = on_io([this] { return watchdog_->scans(); });
  ASSERT_TRUE(eventually([&] { return on_io([this] { return watchdog_->scans(); }) >= scans + 5; }))
      << "scans go on";
  SlowReportList meanwhile = reports();
  EXPECT_TRUE(meanwhile.reports.empty()) << "listed once its stack has names";
  EXPECT_EQ(meanwhile.symbolizing, 1u);
  const double held_for_ms = inflight().oldest[0].age_ms;
  busy.unlock();

  ASSERT_TRUE(eventually([&] { return !reports().reports.empty(); }));
  const SlowReport report = reports().reports[0];
  EXPECT_EQ(reports().symbolizing, 0u);
  ASSERT_FALSE(report.stacks.empty());
  EXPECT_LT(report.stacks[0].first_at_ms, held_for_ms) << "its stack was taken while the symbolizer was busy";
  bool in_checkout = false;
  for (const Frame& f : report.stacks[0].frames) in_checkout |= f.function.find("serve_slow_checkout") != std::string::npos;
  EXPECT_TRUE(in_checkout);
  g_keep_serving = false;
  host_.join();
  ASSERT_TRUE(eventually([&] { return reports().reports[0].finished; }));
}

TEST_F(WatchdogStates, FastRequestsLeaveNoReport) {
  for (int i = 0; i < 1000; ++i) table_.end(table_.begin("fast", static_cast<uint64_t>(i)));
  const uint64_t scans = on_io([this] { return watchdog_->scans(); });
  ASSERT_TRUE(eventually([&] { return on_io([this] { return watchdog_->scans(); }) >= scans + 3; }));
  EXPECT_TRUE(reports().reports.empty());
  EXPECT_EQ(inflight().total, 0u);
}

}  // namespace
}  // namespace periscope::agent
