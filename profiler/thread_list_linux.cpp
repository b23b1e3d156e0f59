#include "profiler/thread_list.h"

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "profiler/proc_reader.h"

namespace periscope {

std::vector<ThreadInfo> list_threads(pid_t pid) {
  std::vector<ThreadInfo> threads;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  const int dir_fd = proc::open_path(task_dir, O_RDONLY | O_DIRECTORY);
  DIR* dir = dir_fd >= 0 ? ::fdopendir(dir_fd) : nullptr;
  if (!dir) {
    if (dir_fd >= 0) ::close(dir_fd);
    return threads;
  }
  const double ticks = static_cast<double>(proc::clock_ticks_per_second());
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long tid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || tid <= 0) continue;
    auto st = proc::read_stat(task_dir + "/" + entry->d_name + "/stat");
    if (!st) continue;  // exited while we were listing
    threads.push_back({static_cast<pid_t>(tid), st->comm, st->state,
                       static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks});
  }
  ::closedir(dir);
  std::sort(threads.begin(), threads.end(),
            [](const ThreadInfo& a, const ThreadInfo& b) { return a.tid < b.tid; });
  return threads;
}

std::optional<std::string> own_thread_name(pid_t tid) {
  if (tid <= 0) return std::nullopt;
  auto comm = proc::read_file("/proc/self/task/" + std::to_string(tid) + "/comm", 64);
  if (!comm) return std::nullopt;
  return comm->substr(0, comm->find('\n'));
}

}  // namespace periscope
