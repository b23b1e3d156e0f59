// The viewer's subcommands. Each returns the process exit code or throws CliError.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>
#include "profiler/sampling_rate.h"

namespace periscope::viewer {

struct CommonOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  bool json = false;
};

struct PsOptions {
  bool prometheus_sd = false;  // print Prometheus file-based service discovery JSON instead
  std::string output;          // write it to this file (atomically) instead of stdout
  std::string job = "periscope";
};
int run_ps(const PsOptions& ps, const CommonOptions& options);
int run_exec(pid_t pid, const std::vector<std::string>& words, const CommonOptions& options);
int run_attach(pid_t pid, const CommonOptions& options);
struct StacksOptions {
  std::vector<pid_t> threads;  // empty: all
  bool force_ptrace = false;
  bool full_names = false;
};
int run_stacks(pid_t pid, const StacksOptions& stacks, const CommonOptions& options);
int run_slow(pid_t pid, bool follow, const CommonOptions& options);

struct RecordOptions {
  double seconds = 0;  // 0: until Ctrl-C
  int hz = kDefaultSamplingHz;
  bool wall = false;
  bool per_thread = false;
  bool by_request = false;
  std::string output;
};
int run_record(pid_t pid, const RecordOptions& record, const CommonOptions& options);

struct ViewOptions {
  std::string input;
  std::string output;  // empty: print the tree
  bool bottom_up = false;
  double min_percent = 1.0;
  bool per_thread = false;  // with output: --threads
  bool by_request = false;  // with output: --by-request
};
int run_view(const ViewOptions& view);

struct TopOptions {
  int hz = kDefaultSamplingHz;
  bool wall = false;
  bool sort_total = false;
  int iterations = 0;  // 0: until 'q' or Ctrl-C
  std::string request;  // only samples taken while serving this request; "-": outside any request
};
int run_top(pid_t pid, const TopOptions& top, const CommonOptions& options);
int run_inflight(pid_t pid, size_t limit, const CommonOptions& options);

struct HeapOptions {
  bool start = false;     // turn heap profiling on (until --stop)
  bool stop = false;
  uint64_t rate = 0;      // with --start: mean bytes between samples (0: the agent's PERISCOPE_HEAP_RATE)
  int diff_seconds = 0;   // read twice, this far apart, and show the change
  std::string value;      // inuse_space (default), inuse_objects, alloc_space, alloc_objects
  std::string output;     // empty: the table
  int rows = 20;
};
int run_heap(pid_t pid, const HeapOptions& heap, const CommonOptions& options);

struct MetricsOptions {
  std::string filter;  // only families whose name contains this
  bool raw = false;    // the Prometheus text format, as /metrics serves it
};
int run_metrics(pid_t pid, const MetricsOptions& metrics, const CommonOptions& options);

struct InjectOptions {
  std::string library;                // libperiscope.so to load (default: beside periscope)
  std::string http;                   // PERISCOPE_HTTP for the injected agent
  std::string socket_dir;             // PERISCOPE_SOCKET_DIR for it
  std::vector<std::string> settings;  // more NAME=VALUE (PERISCOPE_ prefix optional)
  std::chrono::milliseconds wait{std::chrono::seconds(3)};  // to find a thread at a safe point
};
int run_inject(pid_t pid, const InjectOptions& inject, const CommonOptions& options);
int run_eject(pid_t pid, const CommonOptions& options);
int run_view_crash(const std::string& file);

}  // namespace periscope::viewer
