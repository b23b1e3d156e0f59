// The agent's one symbolizer for its own process, for what the agent must name itself (HTTP
// stacks and profiles, slow-request reports and logs; the viewer symbolizes everything else).
// Any agent thread, one at a time (libdw is not thread-safe): hold own_symbolizer_lock() for as
// long as you use the reference. Debug information is the host's memory: the symbolizer is made
// on first use and released after a while unused. A fork child gets a fresh one (and a fresh
// lock: a parent thread may have held it at the fork).
#pragma once

#include <functional>
#include <mutex>

#include "profiler/symbolizer.h"

namespace periscope::agent {

std::unique_lock<std::mutex> own_symbolizer_lock();
Symbolizer& own_symbolizer(const std::unique_lock<std::mutex>& held);

// Runs `job` with the symbolizer on the agent's symbolizer thread, in the order queued, and
// returns at once: the caller's thread (the watchdog's scans) never waits for debug information
// to load. The thread starts on the first job, blocks every signal, and ends after 10 s without
// work, releasing the symbolizer if nothing else used it meanwhile.
void symbolize_in_background(std::function<void(Symbolizer&)> job);

// Queues what the first real lookup would load (the module list, and the symbols and debug
// information of the main program, libc and libstdc++) by looking up one address in each. The
// first stack symbolized otherwise pays for it (~150 ms, seconds on a starved core).
void warm_own_symbolizer();

// Frees the symbolizer (and gives the heap it used back to the system) when it has not been used
// for a while and nobody holds it now. Called by the agent's housekeeping.
void release_own_symbolizer_if_idle();

}  // namespace periscope::agent
