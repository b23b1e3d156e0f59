// The slow-request watchdog, dogslow for C++: on the agent's thread it scans the requests in
// flight; when one crosses its threshold it captures the stack of the thread serving it (the
// stacks feature's capture path), again every interval while it still runs (identical stacks
// collapsed with a count), and records the final duration when it ends. Reports go to an
// in-memory ring, optionally to a JSON-lines file and to stderr.
//
// Threading: everything here runs on the io thread, except the counters (atomics) and the
// symbolizing of captured stacks (on the agent's symbolizer thread, see own_symbolizer.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/src/watchdog/request_table.h"
#include "profiler/symbolizer.h"

namespace boost::asio {
class io_context;
}

namespace periscope::agent {

struct WatchdogConfig {
  std::chrono::milliseconds scan_interval{50};
  std::chrono::milliseconds capture_interval{1000};  // between stacks of a request still running
  std::chrono::milliseconds capture_timeout{250};
  size_t keep = 100;            // reports in memory
  std::string log_path;         // JSON lines, appended; empty: none
  bool log_stderr = false;      // one line per event on stderr
};

struct SlowStack {
  std::vector<Frame> frames;
  std::string error;  // the thread did not answer, was detached, exited...
  int count = 1;      // identical consecutive captures collapse
  double first_at_ms = 0;
};

// A function a slow request's samples were taken in (when a profile ran while it was slow).
struct SampledFunction {
  std::string function;  // its name, or module+offset
  uint64_t code = 0;     // samples whose innermost frame of the program's own code is in it
  uint64_t self = 0;     // samples taken in it
  uint64_t total = 0;    // samples with it anywhere on the stack
};

struct SlowReport {
  uint64_t seq = 0;
  std::string name;
  uint64_t id = 0;
  pid_t tid = 0;
  std::string thread_name;
  int64_t started_unix_ms = 0;
  int64_t threshold_ms = 0;
  double duration_ms = 0;  // so far, or final
  bool finished = false;
  std::vector<SlowStack> stacks;
  uint64_t samples = 0;               // CPU or wall samples taken on it while it was slow
  std::vector<SampledFunction> top;   // where they were: most code, then self samples first; kTopSampled at most
};

inline constexpr size_t kTopSampled = 5;

struct SlowReportList {
  std::vector<SlowReport> reports;
  uint64_t next_seq = 0;  // ask for reports after next_seq - 1 to get only new ones
  size_t symbolizing = 0; // caught, first stack being symbolized: listed once it is
};

struct InflightRequest {
  std::string name;
  uint64_t id = 0;
  pid_t tid = 0;  // 0: detached
  double age_ms = 0;
  bool slow = false;
  int64_t threshold_ms = 0;
};

struct InflightList {
  std::vector<InflightRequest> oldest;  // oldest first
  size_t total = 0;                     // in flight now, shown or not
  size_t capacity = 0;
  uint64_t dropped = 0;                 // requests not tracked because the table was full
};

class Watchdog {
 public:
  Watchdog(boost::asio::io_context& io, RequestTable& table, WatchdogConfig config);
  ~Watchdog();
  void start();  // io thread
  void stop();   // io thread

  // io thread: recent reports (newest last), those with seq > since; and the oldest `limit`
  // requests in flight.
  SlowReportList reports_since(uint64_t since) const;
  InflightList inflight(size_t limit) const;

  uint64_t scans() const { return scans_; }

  // io thread (a Sampler::Observer): a CPU or wall sample, kept when it was taken on the thread
  // of a request being reported as slow, under that request's label.
  void on_sample(pid_t tid, uint32_t label, const std::vector<uint64_t>& pcs, uint64_t weight);

 private:
  struct Reporting;
  struct Tracked;
  struct Captured;
  void schedule();
  void scan();
  struct Due;
  Tracked* begin_report(size_t index, uint64_t sequence, uint64_t start_ticks, RequestSlot& slot,
                        int64_t threshold_ms, double age_ms);
  // Captures the stacks of every due request in one round of signals and hands them to the
  // symbolizer thread: requests that turn slow together are caught together, and no scan waits
  // for symbols. add_symbolized() takes them back, in capture order.
  void index_by_thread_and_label();  // after each scan: what on_sample looks samples up in
  void capture_all(const std::vector<Due>& due);
  void symbolize_then_add(std::shared_ptr<std::vector<Captured>> batch);
  void add_symbolized(std::vector<Captured>& batch);
  void finish(const std::shared_ptr<Reporting>& reporting, double duration_ms);
  void complete(Reporting& r);
  void emit(const SlowReport& report, const char* event);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  RequestTable& table_;
  WatchdogConfig config_;
  uint64_t scans_ = 0;
};

}  // namespace periscope::agent
