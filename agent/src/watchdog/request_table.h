// The requests in flight, for the slow-request watchdog: a fixed table of slots that host threads
// claim and release without locks or allocation (periscope::Request), and that the watchdog scans
// from the agent's thread. Plus per-name statistics (count, slow count, duration histogram) for
// metrics; names are bounded, the rest count under "other".
//
// Slot protocol, one 64-bit word per slot = (sequence << 8) | state:
//   host:     Free -CAS-> Claimed (sequence+1), writes fields, -store-> Active
//   host end: writes end_ticks and end_sequence, then stores Free; if it finds Reported it stores
//             Ended instead (hand-over). No read-modify-write: the rare watchdog CAS that lands
//             between the host's load and store is noticed by the watchdog (the slot is Free or has
//             a newer sequence) and the end is read back through end_sequence.
//   watchdog: Active -CAS-> Reported (same sequence, so never a newer request in the same slot);
//             Ended -> reads the end, -> Free
// Statistics go to a per-thread block (single writer: plain loads and stores, no lock prefix)
// and are summed when read; a thread without a block falls back to shared atomics.
#pragma once

#include "profiler/fd_identity.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::agent {

inline constexpr size_t kRequestNameBytes = 48;
inline constexpr std::array<double, 13> kDurationBucketsMs = {1,   2.5,  5,    10,   25,    50,   100,
                                                              250, 500, 1000, 2500, 5000, 10000};

enum SlotState : uint64_t { kFree = 0, kClaimed = 1, kActive = 2, kReported = 3, kEnded = 4 };

inline uint64_t slot_word(uint64_t sequence, SlotState state) { return (sequence << 8) | state; }
inline SlotState slot_state(uint64_t word) { return static_cast<SlotState>(word & 0xff); }

// All-zero bytes are a free slot: the table's memory comes zeroed from mmap and is not
// constructed element by element, so only the slots in use ever become resident.
struct alignas(64) RequestSlot {
  std::atomic<uint64_t> word{0};
  std::atomic<pid_t> tid{0};  // the serving thread; 0 while detached
  std::atomic<uint64_t> start_ticks{0};
  std::atomic<uint64_t> end_ticks{0};
  std::atomic<uint64_t> end_sequence{0};  // which request end_ticks belongs to
  uint64_t id = 0;
  std::atomic<uint32_t> name_index{0};  // atomic: the watchdog may read it while a new request claims the slot
  std::atomic<uint32_t> label{0};       // what its thread's samples carry while it serves it (label_of)
  // The request its thread served before this one began or was attached there (a nested request's
  // outer one), and that request's sequence: written by the serving thread, read by it (atomics:
  // a slot reused meanwhile is written by its new owner).
  std::atomic<RequestSlot*> outer{nullptr};
  std::atomic<uint64_t> outer_sequence{0};
  char name[kRequestNameBytes] = {};
};

inline constexpr size_t kBuckets = kDurationBucketsMs.size() + 1;  // the last is +Inf

struct DurationCounters {
  std::atomic<uint64_t> sum_ns{0};
  std::array<std::atomic<uint64_t>, kBuckets> buckets{};
};

struct NameStats {
  char name[kRequestNameBytes] = {};
  std::atomic<bool> ready{false};
  std::atomic<int64_t> threshold_ms{-1};  // -1: the default threshold
  std::atomic<uint64_t> slow{0};
  DurationCounters shared;  // for threads without a block of their own
};

// What a name has counted so far, summed over every thread.
struct NameTotals {
  uint64_t requests = 0;
  uint64_t slow = 0;
  uint64_t sum_ns = 0;
  std::array<uint64_t, kBuckets> buckets{};  // per bucket, not cumulative
};

inline constexpr size_t kNamesPerThreadBlock = 8;
struct alignas(64) ThreadStatsBlock {
  std::atomic<bool> owned{false};
  std::atomic<uint32_t> name_plus1[kNamesPerThreadBlock] = {};
  DurationCounters counters[kNamesPerThreadBlock];
};

struct RequestTableConfig {
  size_t capacity = 16384;
  size_t max_names = 100;
  int64_t default_threshold_ms = 1000;
};

class RequestTable {
 public:
  explicit RequestTable(const RequestTableConfig& config);

  // Hot path (host threads): lock-free, no allocation. begin() returns nullptr when the table is
  // full (counted in dropped()).
  RequestSlot* begin(const char* name, uint64_t id);
  void end(RequestSlot* slot);
  static void detach(RequestSlot* slot);
  static void attach(RequestSlot* slot);

  // Per-name statistics. index_of registers a new name (under a mutex, once per name).
  uint32_t index_of(const char* name);
  void set_threshold(const char* name, int64_t ms);
  int64_t threshold_ms(uint32_t name_index) const;
  // The sample label of a name (sample_label.h): the table's tag (its id's low byte) in the top
  // byte, the name's index + 1 below, so a label still names its name after a new table came.
  uint32_t label_of(uint32_t name_index) const {
    return (static_cast<uint32_t>(id_ & 0xff) << 24) | (name_index + 1);
  }

  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_water_.load(std::memory_order_acquire); }
  RequestSlot& slot(size_t i) { return slots_[i]; }
  const RequestSlot& slot(size_t i) const { return slots_[i]; }
  bool owns(const RequestSlot* s) const { return s >= slots_ && s < slots_ + capacity_; }
  size_t names() const { return name_count_.load(std::memory_order_acquire); }
  const NameStats& name_stats(size_t i) const { return names_[i]; }
  NameTotals totals(size_t name_index) const;  // name_index == max_names(): "other"
  size_t max_names() const { return max_names_; }
  // Readable once the first request ever began (one write, by that request): lets the watchdog
  // sleep until the table is used. Never closed, like the table.
  int first_use_fd() const { return first_use_fd_; }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  int64_t default_threshold_ms() const { return default_threshold_ms_; }

 private:
  size_t capacity_;
  size_t max_names_;
  int64_t default_threshold_ms_;
  RequestSlot* slots_;  // mmap'ed, zeroed, never unmapped
  std::unique_ptr<NameStats[]> names_;  // max_names + 1; the last is "other"
  std::atomic<size_t> name_count_{0};
  std::atomic<size_t> high_water_{0};
  std::atomic<uint64_t> dropped_{0};
  int first_use_fd_ = -1;
  FdIdentity first_use_identity_;  // the host may close the number and reuse it: check before writing

  static constexpr size_t kThreadBlocks = 512;
  const uint64_t id_;         // unique per table ever made: a new table may reuse an old address
  ThreadStatsBlock* blocks_;  // in the slots' mapping, after them
  void record(uint32_t name_index, uint64_t ns);
  ThreadStatsBlock* acquire_block();
};

// The table of the running agent, or nullptr (then the request API does nothing).
RequestTable* request_table();
void set_request_table(RequestTable* table);  // the agent, at start; tables are never freed

// The request name a sample label stands for, from the table that made it; empty for 0 or a
// label no table knows.
std::string request_name_of_label(uint32_t label);

// Ends a request on the table it began on. Tables are never freed, so a request that began
// before the agent stopped or restarted still ends safely.
void end_request(RequestSlot* slot);

pid_t cached_tid();               // gettid, cached per thread
void reset_cached_tid_in_fork_child();

}  // namespace periscope::agent
