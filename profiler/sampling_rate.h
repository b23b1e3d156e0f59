// The sampling rate's default and range, and the longest timed profile: the one home for every place that takes a rate (the
// CLI's --rate, the manhole's `profile start`, HTTP's ?rate=, PERISCOPE_PROFILE, the sampler).
#pragma once

#include <string>

namespace periscope {

inline constexpr int kDefaultSamplingHz = 99;  // not 100: stays out of step with 10 ms timers
inline constexpr int kMinSamplingHz = 1;
inline constexpr int kMaxSamplingHz = 10000;
// The longest profile a client may ask for by time (HTTP ?seconds=, `profile start --for`).
inline constexpr int kMaxProfileSeconds = 3600;

inline bool valid_sampling_hz(long long hz) { return hz >= kMinSamplingHz && hz <= kMaxSamplingHz; }

// "1..10000", for error messages.
inline std::string sampling_hz_range() {
  return std::to_string(kMinSamplingHz) + ".." + std::to_string(kMaxSamplingHz);
}

}  // namespace periscope
