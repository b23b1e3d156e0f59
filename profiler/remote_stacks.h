// Another process's stacks without its cooperation, the way eu-stack does it: ptrace through
// elfutils libdwfl. Each thread is stopped only while its own stack is unwound, then let go;
// symbolizing happens after every thread runs again.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "profiler/thread_stacks.h"

namespace periscope {

struct RemoteStacks {
  std::vector<ThreadStack> stacks;
  std::string error;  // non-empty when nothing could be captured (and why, with what to do)
  bool permission_denied = false;
};

// All threads of `pid`, or only those in `only`; at most `max_depth` frames each.
RemoteStacks capture_remote_stacks(pid_t pid, const std::vector<pid_t>& only, size_t max_depth);

}  // namespace periscope
