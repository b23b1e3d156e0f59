// The threads of a process as the kernel sees them (/proc/<pid>/task): id, name, state, CPU time.
// Used by the agent's `threads` command and, later, by stack capture to know whom to signal.
// Threads come and go while we read: a thread that vanishes mid-read is simply left out.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope {

struct ThreadInfo {
  pid_t tid = 0;
  std::string name;
  char state = '?';
  double cpu_seconds = 0;  // user + system
};

// Every thread of `pid` sorted by tid; empty when the process is gone or unreadable.
std::vector<ThreadInfo> list_threads(pid_t pid);

// The name of thread `tid` of this process, or nullopt when it is gone.
std::optional<std::string> own_thread_name(pid_t tid);

}  // namespace periscope
