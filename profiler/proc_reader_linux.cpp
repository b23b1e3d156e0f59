#include "profiler/proc_reader.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace periscope::proc {

namespace {
std::atomic<int> g_proc_fd{-1};
std::atomic<uint64_t> g_proc_dev{0};
std::atomic<uint64_t> g_proc_ino{0};
}  // namespace

// async-signal-safe: fstat, open and atomics.
int proc_dir_fd() {
  int fd = g_proc_fd.load(std::memory_order_acquire);
  struct stat st {};
  if (fd >= 0 && ::fstat(fd, &st) == 0 && st.st_dev == g_proc_dev.load() && st.st_ino == g_proc_ino.load()) {
    return fd;
  }
  // Never taken, or the host closed it (its number may be the host's now: it is not closed).
  int fresh = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fresh < 0 || ::fstat(fresh, &st) != 0) {
    if (fresh >= 0) ::close(fresh);
    return -1;
  }
  g_proc_dev.store(st.st_dev);
  g_proc_ino.store(st.st_ino);
  g_proc_fd.store(fresh, std::memory_order_release);
  return fresh;
}

int open_path(const std::string& path, int flags) {
  if (path.rfind("/proc/", 0) == 0) {
    const int dir = proc_dir_fd();
    if (dir >= 0) return ::openat(dir, path.c_str() + 6, flags | O_CLOEXEC);
  }
  return ::open(path.c_str(), flags | O_CLOEXEC);
}

std::optional<std::string> read_file(const std::string& path, size_t max_bytes) {
  int fd = open_path(path, O_RDONLY);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

std::optional<Stat> parse_stat(const std::string& line) {
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  Stat st;
  st.comm = line.substr(open + 1, close - open - 1);
  // Fields after comm, numbered as in proc(5): 3=state ... 14=utime 15=stime 20=num_threads
  // 22=starttime 23=vsize 24=rss.
  std::vector<std::string> fields;
  size_t pos = close + 1;
  while (pos < line.size()) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    if (end > pos) fields.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  if (fields.size() < 22) return std::nullopt;
  auto field = [&](int number) -> const std::string& { return fields[static_cast<size_t>(number - 3)]; };
  st.state = field(3).empty() ? '?' : field(3)[0];
  st.utime_ticks = std::strtoull(field(14).c_str(), nullptr, 10);
  st.stime_ticks = std::strtoull(field(15).c_str(), nullptr, 10);
  st.num_threads = std::strtoll(field(20).c_str(), nullptr, 10);
  st.start_ticks = std::strtoull(field(22).c_str(), nullptr, 10);
  st.vsize_bytes = std::strtoull(field(23).c_str(), nullptr, 10);
  st.rss_pages = std::strtoll(field(24).c_str(), nullptr, 10);
  return st;
}

std::optional<Stat> read_stat(const std::string& stat_path) {
  auto text = read_file(stat_path, 4096);
  if (!text) return std::nullopt;
  return parse_stat(*text);
}

long clock_ticks_per_second() {
  static const long ticks = [] {
    long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
  }();
  return ticks;
}

std::optional<double> system_uptime_seconds() {
  auto text = read_file("/proc/uptime", 256);
  if (!text) return std::nullopt;
  char* end = nullptr;
  double up = std::strtod(text->c_str(), &end);
  if (end == text->c_str()) return std::nullopt;
  return up;
}

const char* state_name(char state) {
  switch (state) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk-wait";
    case 'T': return "stopped";
    case 't': return "traced";
    case 'Z': return "zombie";
    case 'X': return "dead";
    case 'I': return "idle";
    default: return "unknown";
  }
}

}  // namespace periscope::proc
