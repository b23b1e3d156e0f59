// Reading /proc: small, allocation-tolerant helpers for the agent's thread and the viewer.
// Not for signal handlers. Every function reports failure through its return value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace periscope::proc {

// A descriptor of /proc taken the first time it is asked for (the agent asks at start), so that a
// host that chroots later still has its /proc; checked by identity on every use and taken again
// when the host closed it. async-signal-safe; -1 when /proc cannot be had.
int proc_dir_fd();
// open(2) for `path`; paths under /proc/ are opened through proc_dir_fd(). -1 and errno on failure.
int open_path(const std::string& path, int flags);

// The whole content of a (small, /proc-like) file, or nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path, size_t max_bytes = 1 << 20);

// The fields of /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat that we use.
struct Stat {
  std::string comm;          // name, as the kernel keeps it (15 chars max)
  char state = '?';          // R, S, D, T, t, Z, X, I
  uint64_t utime_ticks = 0;  // user CPU time in clock ticks
  uint64_t stime_ticks = 0;  // system CPU time in clock ticks
  uint64_t start_ticks = 0;  // start time after boot in clock ticks
  int64_t num_threads = 0;
  uint64_t vsize_bytes = 0;  // virtual memory size
  int64_t rss_pages = 0;     // resident set size in pages
};

// Parses one stat line; comm may contain spaces and parentheses, so it is cut at the last ')'.
std::optional<Stat> parse_stat(const std::string& line);
std::optional<Stat> read_stat(const std::string& stat_path);

long clock_ticks_per_second();
// Seconds since boot, from /proc/uptime.
std::optional<double> system_uptime_seconds();
// A readable word for a stat state letter: "running", "sleeping", ...
const char* state_name(char state);

}  // namespace periscope::proc
