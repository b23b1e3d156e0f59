#include "manhole/owned_fds.h"

#include <atomic>
#include <unistd.h>

namespace periscope::manhole {

namespace {
// Sessions are capped far below this; an fd that does not fit is still close-on-exec.
constexpr int kSlots = 1024;
std::atomic<int> g_slots[kSlots];  // 0 = free, otherwise fd + 1
}  // namespace

// async-signal-safe: lock-free compare-exchange on a static table.
void track_fd(int fd) {
  for (auto& slot : g_slots) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) return;
  }
}

// async-signal-safe: lock-free compare-exchange on a static table.
void untrack_fd(int fd) {
  for (auto& slot : g_slots) {
    int expected = fd + 1;
    if (slot.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return;
  }
}

// async-signal-safe: atomics and close() only.
void close_tracked_fds_in_fork_child() {
  for (auto& slot : g_slots) {
    int value = slot.exchange(0, std::memory_order_acq_rel);
    if (value != 0) ::close(value - 1);
  }
}

}  // namespace periscope::manhole
