// The agent's one symbolizer for its own process. io thread only (libdw is not thread-safe); its
// caches make every lookup after the first cheap.
#pragma once

#include "profiler/symbolizer.h"

namespace periscope::agent {

Symbolizer& own_symbolizer();

}  // namespace periscope::agent
