#include "agent/src/metrics/process_metrics.h"

#include <dirent.h>
#include <optional>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/src/metrics/metric_builders.h"
#include "profiler/proc_reader.h"

namespace periscope::agent {

namespace {

std::optional<double> open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return std::nullopt;
  double n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // not the directory's own descriptor
}

// Seconds since the epoch at boot, from the "btime" line of /proc/stat.
std::optional<double> boot_time() {
  auto text = proc::read_file("/proc/stat", 1 << 20);
  if (!text) return std::nullopt;
  auto pos = text->find("\nbtime ");
  if (pos == std::string::npos) return std::nullopt;
  return std::strtod(text->c_str() + pos + 7, nullptr);
}

void add_gauge(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help, double value) {
  out.push_back(gauge_family(name, help));
  add_sample(out.back(), value);
}

}  // namespace

std::vector<prometheus::MetricFamily> collect_process_metrics() {
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(proc::clock_ticks_per_second());
  if (auto st = proc::read_stat("/proc/self/stat")) {
    out.push_back(counter_family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."));
    add_sample(out.back(), static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks);
    add_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
              static_cast<double>(st->rss_pages) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
    add_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
              static_cast<double>(st->vsize_bytes));
    if (auto boot = boot_time()) {
      add_gauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                *boot + static_cast<double>(st->start_ticks) / ticks);
    }
    add_gauge(out, "process_threads", "Number of OS threads in the process.", static_cast<double>(st->num_threads));
  }
  if (auto fds = open_fds()) add_gauge(out, "process_open_fds", "Number of open file descriptors.", *fds);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    add_gauge(out, "process_max_fds", "Maximum number of open file descriptors.", static_cast<double>(limit.rlim_cur));
  }
  return out;
}

}  // namespace periscope::agent
