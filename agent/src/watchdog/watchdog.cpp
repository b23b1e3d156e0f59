#include "agent/src/watchdog/watchdog.h"

#include "manhole/owned_fds.h"
#include "profiler/fd_identity.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <set>
#include <unordered_map>
#include <mutex>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
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

// A report while stacks of it are still being symbolized (on the symbolizer thread). It enters
// the ring, and its "slow" event goes out, with its first stack; "finished" waits for the last.
struct Watchdog::Reporting {
  std::shared_ptr<SlowReport> report;
  int captures_out = 0;  // captured, not symbolized yet
  bool in_ring = false;
  bool ended = false;    // the request ended: "finished" goes out once captures_out is 0
  double final_duration_ms = 0;
  std::map<std::vector<uint64_t>, uint64_t> new_samples;  // stack -> samples, not symbolized yet
  std::map<std::string, SampledFunction> sampled;         // every sample so far, by function
};

struct Watchdog::Tracked {
  size_t index = 0;
  uint64_t sequence = 0;     // of the request in the slot: a different one means ours ended
  uint64_t start_ticks = 0;
  std::shared_ptr<Reporting> reporting;
  double last_capture_age_ms = 0;
};

// One stack of one capture round, on its way through the symbolizer thread and back.
struct Watchdog::Captured {
  std::shared_ptr<Reporting> reporting;
  SlowStack stack;
  std::vector<uint64_t> pcs;  // to symbolize into stack.frames; empty: stack.error says why
  bool only_if_first = false; // ended as it was caught again: its earlier stacks say enough
  bool samples_only = false;  // no stack: only the request's last samples, once it ended
  std::map<std::vector<uint64_t>, uint64_t> samples;  // the request's samples since the last round
  std::map<std::string, SampledFunction> sampled;     // the same, by function (symbolizer thread)
};

// Where the symbolizer thread hands stacks back: our io thread while we live, nowhere after.
struct Outlet {
  explicit Outlet(asio::io_context* io_context) : io(io_context) {}
  std::mutex lock;
  asio::io_context* io;  // null once the watchdog stopped
  void close() {
    std::lock_guard held(lock);
    io = nullptr;
  }
};

struct Watchdog::Impl {
  explicit Impl(asio::io_context& io) : outlet(std::make_shared<Outlet>(&io)), timer(io), first_use(io) {}
  std::shared_ptr<Outlet> outlet;
  asio::steady_timer timer;
  asio::posix::stream_descriptor first_use;  // our copy of the table's first-use eventfd
  int first_use_fd = -1;
  std::map<size_t, Tracked> tracked;  // slot index -> report in progress
  // The same by (thread, sample label) as of the last scan, for on_sample: one lookup a sample.
  std::unordered_map<uint64_t, Tracked*> by_thread_and_label;
  std::deque<std::shared_ptr<SlowReport>> ring;
  uint64_t next_seq = 1;
  size_t symbolizing = 0;  // reports caught, not in the ring until their first stack is symbolized
  int log_fd = -1;
  FdIdentity log_identity;  // log_fd is ours only while this matches
  bool stopped = false;
};

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a sample's frame is called in the top-functions table: its function, else module+offset.
std::string function_of(const Frame& f) {
  if (!f.function.empty()) return f.function;
  char offset[32];
  std::snprintf(offset, sizeof offset, "+0x%llx", static_cast<unsigned long long>(f.module_offset));
  return (f.module.empty() ? std::string("?") : f.module) + offset;
}

// Symbolizer thread: samples (stack -> count) by function, self and anywhere on the stack.
std::map<std::string, SampledFunction> by_function(const std::map<std::vector<uint64_t>, uint64_t>& samples,
                                                   Symbolizer& symbolizer) {
  std::map<std::string, SampledFunction> out;
  for (const auto& [pcs, count] : samples) {
    const std::vector<Frame> frames = symbolize_captured(pcs, symbolizer);
    if (frames.empty()) continue;
    std::set<std::string> seen;  // a recursive function counts once per sample in its total
    bool in_code = false;        // the innermost frame of the program's own code is behind us
    for (size_t i = 0; i < frames.size(); ++i) {
      std::string name = function_of(frames[i]);
      SampledFunction& f = out[name];
      f.function = name;
      if (i == 0) f.self += count;
      if (seen.insert(name).second) f.total += count;
      if (!in_code && !is_runtime_library(frames[i].module)) {
        f.code += count;
        in_code = true;
      }
    }
  }
  return out;
}

// The program's own functions its samples were in first, then the libraries' where they were
// taken; kTopSampled at most.
std::vector<SampledFunction> top_sampled(const std::map<std::string, SampledFunction>& sampled) {
  std::vector<SampledFunction> all;
  for (const auto& [name, f] : sampled) all.push_back(f);
  std::sort(all.begin(), all.end(), [](const SampledFunction& a, const SampledFunction& b) {
    if (a.code != b.code) return a.code > b.code;
    return a.self != b.self ? a.self > b.self : a.total > b.total;
  });
  if (all.size() > kTopSampled) all.resize(kTopSampled);
  return all;
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
  impl_->outlet->close();
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
    // Now, while the first request is young, rather than when requests are slow; on the
    // symbolizer thread, so the scans go on meanwhile.
    warm_own_symbolizer();
  });
}

void Watchdog::stop() {
  impl_->stopped = true;
  impl_->outlet->close();
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
        due.push_back({&t, age});
      }
      ++it;
      continue;
    }
    const uint64_t end_sequence = slot.end_sequence.load(std::memory_order_acquire);
    const uint64_t end = slot.end_ticks.load(std::memory_order_acquire);
    const bool exact = end_sequence == t.sequence && slot.end_sequence.load(std::memory_order_acquire) == t.sequence;
    finish(t.reporting, exact && end > t.start_ticks ? ticks_to_ns(end - t.start_ticks) / 1e6 : t.last_capture_age_ms);
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
    if (Tracked* t = begin_report(i, word >> 8, start, slot, threshold, age)) due.push_back({t, age});
  }
  index_by_thread_and_label();
  if (due.empty()) return;
  capture_all(due);
}

namespace {
uint64_t thread_and_label(pid_t tid, uint32_t label) { return (static_cast<uint64_t>(tid) << 32) | label; }
}  // namespace

void Watchdog::index_by_thread_and_label() {
  impl_->by_thread_and_label.clear();
  for (auto& [index, t] : impl_->tracked) {
    const RequestSlot& slot = table_.slot(index);
    const pid_t tid = slot.tid.load(std::memory_order_relaxed);
    if (tid != 0) impl_->by_thread_and_label[thread_and_label(tid, slot.label.load(std::memory_order_relaxed))] = &t;
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
  report->threshold_ms = threshold_ms;
  report->started_unix_ms = unix_ms_now() - static_cast<int64_t>(age_ms);
  report->duration_ms = age_ms;
  Tracked& tracked = impl_->tracked[index];
  tracked = {index, sequence, start_ticks, std::make_shared<Reporting>(), 0};
  ++impl_->symbolizing;
  tracked.reporting->report = std::move(report);
  return &tracked;
}

void Watchdog::capture_all(const std::vector<Due>& due) {
  auto batch = std::make_shared<std::vector<Captured>>(due.size());
  std::vector<pid_t> tids;           // threads to signal, once each
  std::vector<size_t> capture_of(due.size(), SIZE_MAX);  // due index -> index in tids
  for (size_t i = 0; i < due.size(); ++i) {
    Tracked& t = *due[i].tracked;
    SlowReport& report = *t.reporting->report;
    Captured& c = (*batch)[i];
    c.reporting = t.reporting;
    ++t.reporting->captures_out;
    t.last_capture_age_ms = due[i].age_ms;
    report.duration_ms = due[i].age_ms;
    c.stack.first_at_ms = due[i].age_ms;
    const pid_t tid = table_.slot(t.index).tid.load(std::memory_order_acquire);
    if (tid == 0) {
      c.stack.error = "detached from its thread (waiting to be resumed)";
    } else if (StackCapture::signal_number() == 0) {
      c.stack.error = "stack capture is off";
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
  // Right after the signals: a request that ended meanwhile has a thread that may already serve
  // something else.
  for (size_t i = 0; i < due.size(); ++i) {
    const Tracked& t = *due[i].tracked;
    Captured& c = (*batch)[i];
    if (capture_of[i] == SIZE_MAX) continue;
    if (table_.slot(t.index).word.load(std::memory_order_acquire) != slot_word(t.sequence, kReported)) {
      c.stack.error = "ended before its stack was taken";
      c.only_if_first = true;
      continue;
    }
    const CapturedStack& got = captured[capture_of[i]];
    if (got.status == CapturedStack::Status::kOk) {
      c.pcs = got.pcs;
    } else {
      c.stack.error = got.status == CapturedStack::Status::kExited ? "thread " + std::to_string(got.tid) + " exited"
                                                                   : got.detail;
    }
  }
  for (size_t i = 0; i < due.size(); ++i) (*batch)[i].samples = std::move(due[i].tracked->reporting->new_samples);
  symbolize_then_add(std::move(batch));
}

// Symbols come from the symbolizer thread: loading debug information can take a while (and
// seconds on a starved core), and the scans must go on meanwhile.
void Watchdog::symbolize_then_add(std::shared_ptr<std::vector<Captured>> batch) {
  symbolize_in_background([batch, outlet = impl_->outlet, this](Symbolizer& symbolizer) {
    for (Captured& c : *batch) {
      try {
        if (!c.pcs.empty()) c.stack.frames = symbolize_captured(c.pcs, symbolizer);
        c.sampled = by_function(c.samples, symbolizer);
      } catch (const std::exception& e) {  // the batch still goes back: its reports must end
        c.stack.error = std::string("not symbolized: ") + e.what();
      }
    }
    std::lock_guard held(outlet->lock);
    if (!outlet->io) return;
    asio::post(*outlet->io, [batch, outlet, this] {
      {
        std::lock_guard open(outlet->lock);
        if (!outlet->io) return;  // stopped meanwhile
      }
      add_symbolized(*batch);
    });
  });
}

void Watchdog::add_symbolized(std::vector<Captured>& batch) {
  for (Captured& c : batch) {
    Reporting& r = *c.reporting;
    --r.captures_out;
    SlowReport& report = *r.report;
    for (auto& [name, f] : c.sampled) {
      SampledFunction& all = r.sampled[name];
      all.function = name;
      all.code += f.code;
      all.self += f.self;
      all.total += f.total;
    }
    for (const auto& [pcs, count] : c.samples) report.samples += count;
    if (!c.sampled.empty()) report.top = top_sampled(r.sampled);
    if (c.samples_only) continue;
    // A request already caught in flight that ends just as it is caught again: its stacks so far
    // say what it did, and its "finished" event follows; an empty stack would only add noise.
    if (c.only_if_first && !report.stacks.empty()) continue;
    if (!report.stacks.empty() && same_stack(report.stacks.back(), c.stack)) {
      ++report.stacks.back().count;
    } else {
      report.stacks.push_back(std::move(c.stack));
    }
  }
  for (Captured& c : batch) {
    Reporting& r = *c.reporting;
    if (!r.in_ring) {
      r.in_ring = true;
      --impl_->symbolizing;
      r.report->seq = impl_->next_seq++;
      impl_->ring.push_back(r.report);
      while (impl_->ring.size() > config_.keep) impl_->ring.pop_front();
      emit(*r.report, "slow");
    }
    if (r.ended && r.captures_out == 0) complete(r);
  }
}

void Watchdog::finish(const std::shared_ptr<Reporting>& reporting, double duration_ms) {
  Reporting& r = *reporting;
  r.ended = true;
  r.final_duration_ms = duration_ms;
  if (!r.new_samples.empty()) {  // its last samples, since the last capture
    auto batch = std::make_shared<std::vector<Captured>>(1);
    Captured& c = batch->front();
    c.reporting = reporting;
    c.samples_only = true;
    c.samples = std::move(r.new_samples);
    r.new_samples.clear();
    ++r.captures_out;
    symbolize_then_add(std::move(batch));
  }
  if (r.captures_out == 0) complete(r);
}

void Watchdog::on_sample(pid_t tid, uint32_t label, const std::vector<uint64_t>& pcs, uint64_t weight) {
  if (label == 0 || impl_->by_thread_and_label.empty()) return;
  auto it = impl_->by_thread_and_label.find(thread_and_label(tid, label));
  if (it == impl_->by_thread_and_label.end()) return;
  Tracked& t = *it->second;
  const RequestSlot& slot = table_.slot(t.index);
  if (slot.word.load(std::memory_order_acquire) != slot_word(t.sequence, kReported)) return;  // ended since
  if (slot.tid.load(std::memory_order_relaxed) != tid) return;                             // moved since
  std::vector<uint64_t> stack;
  for (uint64_t pc : pcs) {
    if (pc != 0) stack.push_back(pc);  // 0: where a truncated stack was cut
  }
  if (!stack.empty()) t.reporting->new_samples[std::move(stack)] += weight;
}

void Watchdog::complete(Reporting& r) {
  if (r.report->finished) return;  // one "finished" per report
  r.report->duration_ms = r.final_duration_ms;
  r.report->finished = true;
  emit(*r.report, "finished");
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
    const std::string line = slow_log_record(report, event, ::getpid());
    (void)!::write(impl_->log_fd, line.data(), line.size());
  }
  if (config_.log_stderr) log_line(slow_log_text(report, event));
}

SlowReportList Watchdog::reports_since(uint64_t since) const {
  SlowReportList out;
  for (const auto& r : impl_->ring) {
    if (r->seq > since) out.reports.push_back(*r);
  }
  out.next_seq = impl_->next_seq;
  out.symbolizing = impl_->symbolizing;
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
