// The hand-off from sampling signal handlers to the agent's thread: a bounded multi-producer,
// single-consumer ring of fixed-size sample records (Vyukov's bounded queue). Producers run in
// signal handlers: push() is async-signal-safe, lock-free, never allocates, never waits; when
// the ring is full the sample is dropped and counted. The consumer is the agent's thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sys/types.h>

namespace periscope {

inline constexpr size_t kMaxSampleDepth = 256;

struct SampleRecord {
  pid_t tid = 0;
  uint32_t depth = 0;           // pcs used; pcs[0] is the interrupted pc
  uint32_t weight = 1;          // timer overruns fold into one sample
  uint32_t label = 0;           // the thread's sample label when it was taken (sample_label.h)
  bool truncated = false;
  uint64_t pcs[kMaxSampleDepth];
};

class SampleRing {
 public:
  explicit SampleRing(size_t capacity);  // rounded up to a power of two; memory is preallocated

  struct Cell {
    std::atomic<size_t> sequence;
    SampleRecord record;
  };

  // Producer side (signal handlers). Returns a cell whose record to fill, or nullptr when full
  // (counted). async-signal-safe: atomics only.
  Cell* begin_push();
  void commit_push(Cell* cell);  // async-signal-safe: one release store

  // Consumer side (one thread). Calls fn(const SampleRecord&) for each record; returns how many.
  template <typename F>
  size_t drain(F&& fn);

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  size_t mask_;
  std::unique_ptr<Cell[]> cells_;
  alignas(64) std::atomic<size_t> enqueue_{0};
  alignas(64) size_t dequeue_ = 0;
  std::atomic<uint64_t> dropped_{0};
};

template <typename F>
size_t SampleRing::drain(F&& fn) {
  size_t n = 0;
  for (;;) {
    Cell& cell = cells_[dequeue_ & mask_];
    if (cell.sequence.load(std::memory_order_acquire) != dequeue_ + 1) return n;  // empty, or still being written
    fn(cell.record);
    cell.sequence.store(dequeue_ + mask_ + 1, std::memory_order_release);
    ++dequeue_;
    ++n;
  }
}

}  // namespace periscope
