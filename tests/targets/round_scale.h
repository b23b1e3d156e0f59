// Random round lengths for the 60/30/10 profiler workloads (tests/targets/profile_target,
// bench/cpu_workload shares). A strictly periodic 10 ms round aliases with a fixed sampling rate:
// at 199 Hz the samples drift only 1.5 rounds in 3 s (the shares once came out 67/19/13), and at
// 999 Hz they lock onto the grid (exactly 6/3/1 samples a round, whatever the profiler's
// accuracy). Scaling each whole round keeps the split within it at 60/30/10.
#pragma once

#include <cstdint>

namespace periscope_targets {

class RoundScale {
 public:
  // The next round's length in percent of the nominal one: 50..150, 100 on average (xorshift32,
  // the same sequence every run).
  uint64_t next_percent() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return 50 + state_ % 101;
  }

 private:
  uint32_t state_ = 2463534242u;
};

}  // namespace periscope_targets
