// The agent's one symbolizer for its own process. io thread only (libdw is not thread-safe); its
// caches make every lookup after the first cheap.
#pragma once

#include "profiler/symbolizer.h"

namespace periscope::agent {

Symbolizer& own_symbolizer();

// Loads what the first real lookup would (the module list, and the symbols and debug information
// of the main program, libc and libstdc++) by looking up one address in each. The first stack
// symbolized otherwise pays for it (~150 ms) while the agent's thread has other work waiting.
void warm_own_symbolizer();

}  // namespace periscope::agent
