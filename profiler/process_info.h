// Facts about a whole process read from /proc: name, executable, command line, owner, uptime.
// Shared by the agent's `info` command and the viewer's `ps`.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope {

struct ProcessInfo {
  pid_t pid = 0;
  std::string name;                  // comm
  std::string exe;                   // readlink /proc/<pid>/exe, empty when not permitted
  std::vector<std::string> cmdline;  // argv without the padding of programs that rewrite it
  std::string title;                 // argv joined, as the process set it ("nginx: worker process"), printable
  uid_t uid = 0;                     // real uid
  double uptime_seconds = 0;
  double cpu_seconds = 0;
  long threads = 0;
};

// nullopt when the process does not exist (or vanished while we read it).
std::optional<ProcessInfo> read_process_info(pid_t pid);

bool process_exists(pid_t pid);

// Whether thread `tid` of process `pid` is still alive (its /proc/<pid>/task/<tid> is there).
bool thread_exists(pid_t pid, pid_t tid);

// "3d4h", "2h05m", "4m07s", "12s": a compact, human duration.
std::string format_duration(double seconds);

}  // namespace periscope
