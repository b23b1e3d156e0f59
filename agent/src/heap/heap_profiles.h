// The heap sampler's table as a HeapProfile: with addresses for the viewer to name, or named by the
// agent itself (HTTP). Agent's thread.
#pragma once

#include "profiler/heap_profile.h"

namespace periscope::agent {

HeapProfile raw_heap_profile();
HeapProfile named_heap_profile();

}  // namespace periscope::agent
