// A cheap monotonic clock for the request hot path: the TSC (rdtsc, ~8 ns) where the CPU says it is
// constant and non-stop, else CLOCK_MONOTONIC (~18 ns). Ticks convert to nanoseconds with a rate
// calibrated against CLOCK_MONOTONIC at start and refined by the watchdog as time goes by.
// now_ticks() and ticks_to_ns() are lock-free and allocation-free.
#pragma once

#include <cstdint>

namespace periscope::agent {

void init_fast_clock();      // once, before the first now_ticks() that matters
void refine_fast_clock();    // from the watchdog: a longer baseline, a better rate
uint64_t now_ticks();
double ticks_to_ns(uint64_t ticks);
uint64_t monotonic_ns();     // CLOCK_MONOTONIC
bool fast_clock_uses_tsc();

}  // namespace periscope::agent
