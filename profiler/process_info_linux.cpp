#include "profiler/process_info.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/proc_reader.h"

namespace periscope {

namespace {

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

// Another user's process names itself: never let its bytes drive our terminal.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

std::vector<std::string> split_nul(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\0', pos);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  // Programs that set their title over argv (nginx, postgres, redis) pad the rest with NULs.
  while (!out.empty() && out.back().find_first_not_of(' ') == std::string::npos) out.pop_back();
  return out;
}

}  // namespace

bool process_exists(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) == 0) return true;
  return errno == EPERM;  // exists, but belongs to someone else
}

bool thread_exists(pid_t pid, pid_t tid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  return ::access(path.c_str(), F_OK) == 0;
}

std::optional<ProcessInfo> read_process_info(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  auto st = proc::read_stat(dir + "/stat");
  if (!st) return std::nullopt;
  ProcessInfo info;
  info.pid = pid;
  info.name = st->comm;
  info.exe = read_link(dir + "/exe");
  if (auto cmd = proc::read_file(dir + "/cmdline", 64 * 1024)) info.cmdline = split_nul(*cmd);
  for (const auto& arg : info.cmdline) info.title += (info.title.empty() ? "" : " ") + printable(arg);
  while (!info.title.empty() && info.title.back() == ' ') info.title.pop_back();
  struct stat sb {};
  if (::stat(dir.c_str(), &sb) == 0) info.uid = sb.st_uid;
  const double ticks = static_cast<double>(proc::clock_ticks_per_second());
  if (auto up = proc::system_uptime_seconds()) {
    double started = static_cast<double>(st->start_ticks) / ticks;
    info.uptime_seconds = *up > started ? *up - started : 0;
  }
  info.cpu_seconds = static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks;
  info.threads = st->num_threads;
  return info;
}

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  auto s = static_cast<long long>(seconds);
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else std::snprintf(buf, sizeof buf, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
  return buf;
}

}  // namespace periscope
