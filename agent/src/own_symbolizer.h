// The agent's one symbolizer for its own process, for what the agent must name itself (HTTP
// stacks and profiles, slow-request reports and logs; the viewer symbolizes everything else).
// io thread only (libdw is not thread-safe). Debug information is the host's memory: the
// symbolizer is made on first use and released after a while unused.
#pragma once

#include "profiler/symbolizer.h"

namespace periscope::agent {

Symbolizer& own_symbolizer();

// Loads what the first real lookup would (the module list, and the symbols and debug information
// of the main program, libc and libstdc++) by looking up one address in each. The first stack
// symbolized otherwise pays for it (~150 ms) while the agent's thread has other work waiting.
void warm_own_symbolizer();

// Frees the symbolizer (and gives the heap it used back to the system) when it has not been used
// for a while. Called by the agent's housekeeping.
void release_own_symbolizer_if_idle();

}  // namespace periscope::agent
