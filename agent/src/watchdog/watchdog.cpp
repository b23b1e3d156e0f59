#include "agent/src/watchdog/watchdog.h"

#include "manhole/owned_fds.h"
#include "profiler/fd_identity.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include "agent/src/logging.h"
#include "agent/src/own_symbolizer.h"
#include "agent/src/watchdog/fast_clock.h"
#include "agent/src/watchdog/slow_report_format.h"
#include "profiler/function_names.h"
#include "profiler/capture/stack_capture.h"
#include "profiler/thread_list.h"
#include "profiler/thread_stacks.h"

namespace periscope::agent {

namespace asio = boost::asio;

struct Watchdog::Tracked {
  size_t index = 0;
  uint64_t sequence = 0;     // of the request in the slot: a different one means ours ended
  uint64_t start_ticks = 0;
  std::shared_ptr<SlowReport> report;
  double last_capture_age_ms = 0;
};

struct Watchdog::Impl {
  explicit Impl(asio::io_context& io) : timer(io), first_use(io) {}
  asio::steady_timer timer;
  asio::posix::stream_descriptor first_use;  // our copy of the table's first-use eventfd
  int first_use_fd = -1;
  std::map<size_t, Tracked> tracked;  // slot index -> report in progress
  std::deque<std::shared_ptr<SlowReport>> ring;
  uint64_t next_seq = 1;
  int log_fd = -1;
  FdIdentity log_identity;  // log_fd is ours only while this matches
  bool stopped = false;
};

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool same_stack(const SlowStack& a, const SlowStack& b) {
  if (a.error != b.error || a.frames.size() != b.frames.size()) return false;
  for (size_t i = 0; i < a.frames.size(); ++i) {
    const Frame &x = a.frames[i], &y = b.frames[i];
    if (x.function != y.function || x.file != y.file || x.line != y.line || x.module != y.module) return false;
    if (x.function.empty() && x.module_offset != y.module_offset) return false;
  }
  return true;
}

bool is_runtime_library(const std::string& module) {
  for (const char* prefix : {"libc.so", "libstdc++.so", "libm.so", "libgcc_s.so", "libpthread.so", "ld-linux", "[vdso]",
                             "libasan.so", "libubsan.so", "libtsan.so", "liblsan.so"}) {
    if (module.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

Watchdog::Watchdog(asio::io_context& io, RequestTable& table, WatchdogConfig config)
    : impl_(std::make_unique<Impl>(io)), table_(table), config_(std::move(config)) {
  if (!config_.log_path.empty()) {
    impl_->log_fd = ::open(config_.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (impl_->log_fd < 0) {
      log_line("slow-request log " + config_.log_path + " cannot be opened: " + std::strerror(errno));
    } else if (auto id = FdIdentity::of(impl_->log_fd)) {
      impl_->log_identity = *id;
    }
  }
}

Watchdog::~Watchdog() {
  if (impl_->log_fd >= 0 && impl_->log_identity.still_at(impl_->log_fd)) ::close(impl_->log_fd);
}

void Watchdog::start() {
  // A host that never uses periscope::Request never wakes us: we sleep until its first request
  // (the table's eventfd) and scan from then on. Without the eventfd, scan from the start.
  int fd = table_.high_water() == 0 && table_.first_use_fd() >= 0 ? ::fcntl(table_.first_use_fd(), F_DUPFD_CLOEXEC, 0)
                                                                   : -1;
  boost::system::error_code ec;
  if (fd >= 0) impl_->first_use.assign(fd, ec);
  if (fd < 0 || ec) {
    if (fd >= 0) ::close(fd);
    schedule();
    return;
  }
  manhole::track_fd(fd);  // known by identity: closed only while still ours, checked for loss
  impl_->first_use_fd = fd;
  impl_->first_use.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& e) {
    if (e || impl_->stopped) return;
    schedule();
    // Now, while the first request is young, rather than when requests are slow: a cold first
    // symbolization holds this thread (and so the scans) for ~150 ms.
    warm_own_symbolizer();
  });
}

void Watchdog::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
  if (impl_->first_use_fd >= 0) {
    impl_->first_use.release();  // cancels the wait; the table closes the fd if it is still ours
    manhole::close_tracked(impl_->first_use_fd);
    impl_->first_use_fd = -1;
  }
}

void Watchdog::schedule() {
  if (impl_->stopped) return;
  impl_->timer.expires_after(config_.scan_interval);
  impl_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || impl_->stopped) return;
    scan();
    schedule();
  });
}

struct Watchdog::Due {
  Tracked* tracked;
  double age_ms;
  bool fresh;  // just turned slow: its "slow" event goes out once the stack is in
};

void Watchdog::scan() {
  ++scans_;
  refine_fast_clock();
  const uint64_t now = now_ticks();
  auto age_ms = [now](uint64_t start) { return now > start ? ticks_to_ns(now - start) / 1e6 : 0.0; };
  std::vector<Due> due;

  // Requests being reported: still running, ended (handed over), or ended just as we took them.
  for (auto it = impl_->tracked.begin(); it != impl_->tracked.end();) {
    Tracked& t = it->second;
    RequestSlot& slot = table_.slot(t.index);
    const uint64_t word = slot.word.load(std::memory_order_acquire);
    const bool same = (word >> 8) == t.sequence;
    if (same && slot_state(word) == kReported) {
      double age = age_ms(t.start_ticks);
      if (age - t.last_capture_age_ms >= static_cast<double>(config_.capture_interval.count())) {
        due.push_back({&t, age, false});
      }
      ++it;
      continue;
    }
    const uint64_t end_sequence = slot.end_sequence.load(std::memory_order_acquire);
    const uint64_t end = slot.end_ticks.load(std::memory_order_acquire);
    const bool exact = end_sequence == t.sequence && slot.end_sequence.load(std::memory_order_acquire) == t.sequence;
    finish(t, exact && end > t.start_ticks ? ticks_to_ns(end - t.start_ticks) / 1e6 : t.last_capture_age_ms);
    if (same && slot_state(word) == kEnded) slot.word.store(slot_word(t.sequence, kFree), std::memory_order_release);
    it = impl_->tracked.erase(it);
  }

  // Requests that crossed their threshold since the last scan: all taken over first.
  const size_t high_water = table_.high_water();
  for (size_t i = 0; i < high_water; ++i) {
    RequestSlot& slot = table_.slot(i);
    uint64_t word = slot.word.load(std::memory_order_acquire);
    if (slot_state(word) != kActive) continue;
    const uint64_t start = slot.start_ticks.load(std::memory_order_relaxed);
    const double age = age_ms(start);
    const int64_t threshold = table_.threshold_ms(slot.name_index.load(std::memory_order_relaxed));
    if (age < static_cast<double>(threshold)) continue;
    // Same sequence or nothing: never take over a newer request in the same slot.
    if (!slot.word.compare_exchange_strong(word, slot_word(word >> 8, kReported), std::memory_order_acq_rel)) continue;
    if (Tracked* t = begin_report(i, word >> 8, start, slot, threshold, age)) due.push_back({t, age, true});
  }
  if (due.empty()) return;

  capture_all(due);
  for (const Due& d : due) {
    if (!d.fresh) continue;
    impl_->ring.push_back(d.tracked->report);
    while (impl_->ring.size() > config_.keep) impl_->ring.pop_front();
    emit(*d.tracked->report, "slow");
  }
}

Watchdog::Tracked* Watchdog::begin_report(size_t index, uint64_t sequence, uint64_t start_ticks, RequestSlot& slot,
                                          int64_t threshold_ms, double age_ms) {
  auto report = std::make_shared<SlowReport>();
  report->name = slot.name;
  report->id = slot.id;
  // The host may have ended it just as we took it over (and even begun the next one): then it
  // is not slow in flight any more, and what we copied may be torn. Drop it.
  const uint64_t now_word = slot.word.load(std::memory_order_acquire);
  if (now_word != slot_word(sequence, kReported)) {
    if (now_word == slot_word(sequence, kEnded)) slot.word.store(slot_word(sequence, kFree), std::memory_order_release);
    return nullptr;
  }
  report->seq = impl_->next_seq++;
  report->threshold_ms = threshold_ms;
  report->started_unix_ms = unix_ms_now() - static_cast<int64_t>(age_ms);
  report->duration_ms = age_ms;
  Tracked& tracked = impl_->tracked[index];
  tracked = {index, sequence, start_ticks, report, 0};
  return &tracked;
}

void Watchdog::capture_all(const std::vector<Due>& due) {
  std::vector<SlowStack> stacks(due.size());
  std::vector<pid_t> tids;           // threads to signal, once each
  std::vector<size_t> capture_of(due.size(), SIZE_MAX);  // due index -> index in tids
  for (size_t i = 0; i < due.size(); ++i) {
    Tracked& t = *due[i].tracked;
    SlowReport& report = *t.report;
    t.last_capture_age_ms = due[i].age_ms;
    report.duration_ms = due[i].age_ms;
    stacks[i].first_at_ms = due[i].age_ms;
    const pid_t tid = table_.slot(t.index).tid.load(std::memory_order_acquire);
    if (tid == 0) {
      stacks[i].error = "detached from its thread (waiting to be resumed)";
    } else if (StackCapture::signal_number() == 0) {
      stacks[i].error = "stack capture is off";
    } else {
      if (tid != report.tid) {  // first capture, or the request moved to another thread
        report.tid = tid;
        report.thread_name = own_thread_name(tid).value_or("");
      }
      auto known = std::find(tids.begin(), tids.end(), tid);
      capture_of[i] = static_cast<size_t>(known - tids.begin());
      if (known == tids.end()) tids.push_back(tid);
    }
  }
  std::vector<CapturedStack> captured;
  if (!tids.empty()) captured = StackCapture::capture(tids, config_.capture_timeout);
  // Right after the signals, before any symbolizing: a request that ended meanwhile has a
  // thread that may already serve something else.
  std::vector<bool> ended(due.size(), false);
  for (size_t i = 0; i < due.size(); ++i) {
    const Tracked& t = *due[i].tracked;
    if (capture_of[i] != SIZE_MAX &&
        table_.slot(t.index).word.load(std::memory_order_acquire) != slot_word(t.sequence, kReported)) {
      stacks[i].error = "ended before its stack was taken";
      capture_of[i] = SIZE_MAX;
      ended[i] = true;
    }
  }
  for (size_t i = 0; i < due.size(); ++i) {
    Tracked& t = *due[i].tracked;
    SlowStack& stack = stacks[i];
    // A request already caught in flight that ends just as it is caught again: its stacks so far
    // say what it did, and its "finished" event follows; an empty stack would only add noise.
    if (ended[i] && !t.report->stacks.empty()) continue;
    if (capture_of[i] != SIZE_MAX) {
      const CapturedStack& c = captured[capture_of[i]];
      if (c.status == CapturedStack::Status::kOk) {
        stack.frames = symbolize_captured(c.pcs, own_symbolizer());  // made on first use, released when idle
      } else {
        stack.error = c.status == CapturedStack::Status::kExited ? "thread " + std::to_string(c.tid) + " exited"
                                                                 : c.detail;
      }
    }
    SlowReport& report = *t.report;
    if (!report.stacks.empty() && same_stack(report.stacks.back(), stack)) {
      ++report.stacks.back().count;
    } else {
      report.stacks.push_back(std::move(stack));
    }
  }
}

void Watchdog::finish(Tracked& tracked, double duration_ms) {
  tracked.report->duration_ms = duration_ms;
  tracked.report->finished = true;
  emit(*tracked.report, "finished");
}

void Watchdog::emit(const SlowReport& report, const char* event) {
  if (impl_->log_fd >= 0 && !impl_->log_identity.still_at(impl_->log_fd)) {
    // The host closed our log and reused the number: write nothing into its file, reopen ours.
    impl_->log_fd = ::open(config_.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    auto id = impl_->log_fd >= 0 ? FdIdentity::of(impl_->log_fd) : std::nullopt;
    if (id) impl_->log_identity = *id;
    else impl_->log_fd = -1;
  }
  if (impl_->log_fd >= 0) {
    nlohmann::json j = report_to_json(report);
    j["event"] = event;
    j["pid"] = ::getpid();
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    (void)!::write(impl_->log_fd, line.data(), line.size());
  }
  if (config_.log_stderr) {
    std::string where;
    if (!report.stacks.empty()) {
      const SlowStack& s = report.stacks.back();
      // The innermost named frame of the host's own code says most; libc and friends say little.
      auto named = std::find_if(s.frames.begin(), s.frames.end(), [](const Frame& f) {
        return !f.function.empty() && !is_runtime_library(f.module);
      });
      if (named == s.frames.end()) {
        named = std::find_if(s.frames.begin(), s.frames.end(), [](const Frame& f) { return !f.function.empty(); });
      }
      where = !s.error.empty()             ? s.error
              : named != s.frames.end()    ? describe_frame(*named, false)
              : s.frames.empty()           ? "no frames"
                                           : describe_frame(s.frames.front(), false);
    }
    std::string what = std::string(event) == "slow" ? "running for " + human_ms(report.duration_ms)
                                                    : "finished after " + human_ms(report.duration_ms);
    log_line("slow request '" + report.name + "' (id " + std::to_string(report.id) + ") on thread " +
             std::to_string(report.tid) + " " + what + (where.empty() ? "" : ": at " + where));
  }
}

SlowReportList Watchdog::reports_since(uint64_t since) const {
  SlowReportList out;
  for (const auto& r : impl_->ring) {
    if (r->seq > since) out.reports.push_back(*r);
  }
  out.next_seq = impl_->next_seq;
  return out;
}

InflightList Watchdog::inflight(size_t limit) const {
  InflightList out;
  const uint64_t now = now_ticks();
  for (size_t i = 0; i < table_.high_water(); ++i) {
    RequestSlot& slot = table_.slot(i);
    uint64_t word = slot.word.load(std::memory_order_acquire);
    SlotState state = slot_state(word);
    if (state != kActive && state != kReported) continue;
    uint64_t start = slot.start_ticks.load(std::memory_order_relaxed);
    char name[kRequestNameBytes];
    std::memcpy(name, slot.name, sizeof name);
    name[kRequestNameBytes - 1] = '\0';
    uint64_t id = slot.id;
    pid_t tid = slot.tid.load(std::memory_order_relaxed);
    if (slot.word.load(std::memory_order_acquire) != word) continue;  // changed while we read it
    double age = now > start ? ticks_to_ns(now - start) / 1e6 : 0;
    out.oldest.push_back({name, id, tid, age, state == kReported,
                          table_.threshold_ms(slot.name_index.load(std::memory_order_relaxed))});
  }
  std::sort(out.oldest.begin(), out.oldest.end(),
            [](const InflightRequest& a, const InflightRequest& b) { return a.age_ms > b.age_ms; });
  out.total = out.oldest.size();
  if (out.oldest.size() > limit) out.oldest.resize(limit);
  out.capacity = table_.capacity();
  out.dropped = table_.dropped();
  return out;
}

}  // namespace periscope::agent
