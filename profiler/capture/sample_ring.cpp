#include "profiler/capture/sample_ring.h"

namespace periscope {

SampleRing::SampleRing(size_t capacity) {
  size_t size = 1;
  while (size < capacity) size <<= 1;
  mask_ = size - 1;
  cells_.reset(new Cell[size]);
  for (size_t i = 0; i < size; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
}

// async-signal-safe: a CAS loop on the enqueue index; gives up (and counts) when full.
SampleRing::Cell* SampleRing::begin_push() {
  size_t pos = enqueue_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    size_t seq = cell.sequence.load(std::memory_order_acquire);
    intptr_t diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
    if (diff == 0) {
      if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) return &cell;
    } else if (diff < 0) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // full: drop, never wait
      return nullptr;
    } else {
      pos = enqueue_.load(std::memory_order_relaxed);
    }
  }
}

// async-signal-safe: publishes the record with one release store. The cell's sequence is still
// the position it was claimed at (only its producer writes it now); the consumer waits for + 1.
void SampleRing::commit_push(Cell* cell) {
  cell->sequence.store(cell->sequence.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace periscope
