// This process's own thread stacks, captured by signal (StackCapture) and symbolized: what the
// agent's `stacks` command shows. Call from the agent's thread, never from a signal handler.
#pragma once

#include <chrono>
#include <sys/types.h>
#include <vector>

#include "profiler/thread_stacks.h"

namespace periscope {

// This process's threads (all, or those in `only`). A tid in `only` that is not a thread of
// this process yields an entry with an error. Without a symbolizer the stacks keep their raw pcs.
std::vector<ThreadStack> capture_own_stacks(const std::vector<pid_t>& only, std::chrono::milliseconds timeout,
                                            Symbolizer* symbolizer);

}  // namespace periscope
