// periscope agent: the public API for hosts that link libperiscope.so instead of (or as well as)
// LD_PRELOADing it. See docs/configuration.md for every option and its PERISCOPE_* variable, and
// periscope_c.h (included here) for the C API.
//
// Contract: every function is thread-safe, never throws, and is cheap when the agent is off.
// Variable getters/setters run on the agent's own thread; commands on a thread of their own each
// (at most 4 at once; the client is told after PERISCOPE_COMMAND_TIMEOUT_MS that one did not
// answer). Make them thread-safe against your threads and report failure by throwing
// std::exception (the message is shown to the user; nothing escapes into your code).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "periscope/periscope_c.h"  // the C API, and PERISCOPE_API

namespace prometheus {
class Registry;
}

namespace periscope {

struct Options {
  bool enabled = true;                      // PERISCOPE_DISABLE=1 turns the agent off
  std::string socket_dir;                   // PERISCOPE_SOCKET_DIR; empty: $XDG_RUNTIME_DIR/periscope,
                                            // else /tmp/periscope-<uid>
  int max_connections = 16;                 // PERISCOPE_MAX_CONNECTIONS: concurrent manhole sessions
  std::chrono::seconds idle_timeout{600};   // PERISCOPE_IDLE_TIMEOUT: seconds before an idle session closes
  bool restart_after_fork = true;           // PERISCOPE_FORK=on|off: a forked child gets its own agent
  bool verbose = false;                     // PERISCOPE_VERBOSE=1: one line on stderr when started
  int stack_signal = 0;                     // PERISCOPE_STACK_SIGNAL: real-time signal for stack capture;
                                            // 0 picks the first free one from SIGRTMIN+8
  std::chrono::milliseconds stack_timeout{250};  // PERISCOPE_STACK_TIMEOUT_MS: how long a thread may take
                                                 // to answer a stack capture
  std::chrono::milliseconds command_timeout{5000};  // PERISCOPE_COMMAND_TIMEOUT_MS: how long the client of an
                                                    // application command waits for its answer
  std::string profile;                      // PERISCOPE_PROFILE=cpu[:HZ] or wall[:HZ]: profile the whole run,
                                            // from start to exit (like gperftools' CPUPROFILE)
  std::string profile_out;                  // PERISCOPE_PROFILE_OUT: where that profile goes at exit (format by
                                            // extension: .folded, .speedscope.json, .pb.gz); default
                                            // periscope-<pid>.folded in the working directory
  bool profile_timers_only = false;         // PERISCOPE_PROFILE_CLOCK=timer: per-thread CPU timers instead of
                                            // perf_event (default perf: falls back to timers by itself)
  int profile_signal = 0;                   // PERISCOPE_PROFILE_SIGNAL: real-time signal for sampling;
                                            // 0 picks the highest free one
  // Slow-request watchdog (periscope::Request).
  std::chrono::milliseconds slow_threshold{1000};   // PERISCOPE_SLOW_MS: default threshold
  std::chrono::milliseconds slow_interval{1000};    // PERISCOPE_SLOW_INTERVAL_MS: between stacks of a
                                                    // request that is still running
  int slow_keep = 100;                              // PERISCOPE_SLOW_KEEP: reports kept in memory
  std::string slow_log;                             // PERISCOPE_SLOW_LOG: JSON lines appended here
  bool slow_stderr = false;                         // PERISCOPE_SLOW_STDERR=1: one line per event
  int max_inflight = 16384;                         // PERISCOPE_SLOW_MAX_INFLIGHT: requests tracked at once
  int max_request_names = 100;                      // PERISCOPE_SLOW_MAX_NAMES: distinct names in metrics;
                                                    // the rest count as "other"
  // HTTP admin endpoint: /metrics (Prometheus), /debug/pprof/profile, /debug/stacks, ...
  std::string http;                                 // PERISCOPE_HTTP=[HOST:]PORT; empty: off. Without a host
                                                    // it listens on 127.0.0.1; port 0 picks a free port
  int http_max_connections = 16;                    // PERISCOPE_HTTP_MAX_CONNECTIONS: concurrent connections
  std::chrono::milliseconds http_timeout{10000};    // PERISCOPE_HTTP_TIMEOUT_MS: to read a request or write
                                                    // a response
  std::string http_token_file;                      // PERISCOPE_HTTP_TOKEN_FILE: the bearer token clients
                                                    // other than the process's uid and root must send (for a
                                                    // scraper's config); empty: a random one is written to
                                                    // <socket dir>/<pid>.token (0600)
  std::string http_hosts;                           // PERISCOPE_HTTP_HOSTS: names allowed in the Host header
                                                    // (comma-separated) besides IP literals, localhost and
                                                    // this machine's name

  bool crash_report = true;                         // PERISCOPE_CRASH=on|off: on SIGSEGV, SIGBUS, SIGILL,
                                                    // SIGFPE, SIGABRT write what the process was doing
                                                    // (stack, requests in flight, threads) to stderr
  std::string crash_log;                            // PERISCOPE_CRASH_LOG: ...and append it to this file

  // Heap profiling (needs the agent loaded before the allocator: LD_PRELOAD, or linked first)
  bool heap_profile = false;                        // PERISCOPE_HEAP=on: sample allocations from the start
  uint64_t heap_rate = 512 * 1024;                  // PERISCOPE_HEAP_RATE: mean bytes between samples

  // Defaults overridden by PERISCOPE_* environment variables; a malformed value is reported on
  // stderr (one line) and the default is kept.
  PERISCOPE_API static Options from_env();
};

// The outcome of an API call. Check it: a failed start leaves the agent off, not half on.
class [[nodiscard]] Status {
 public:
  static Status success() { return Status(true, {}); }
  static Status failure(std::string message) { return Status(false, std::move(message)); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  Status(bool ok, std::string message) : ok_(ok), message_(std::move(message)) {}
  bool ok_;
  std::string message_;
};

// Starts the agent (idempotent: a second call while running succeeds and changes nothing).
PERISCOPE_API Status start(const Options& options = Options::from_env());
// Stops the agent's thread and removes its socket. Safe when not running.
PERISCOPE_API void stop();
PERISCOPE_API bool running();
// The manhole socket of the running agent, empty when not running.
PERISCOPE_API std::string socket_path();

// The HTTP endpoint of the running agent ("127.0.0.1:9464"), empty when it has none.
PERISCOPE_API std::string http_endpoint();

// The Prometheus registry served at /metrics (and by `periscope metrics PID`), beside the
// process_* and periscope_* metrics of the agent. It exists whether or not the agent runs, and
// lives until the process exits. Add families with prometheus-cpp (link prometheus-cpp::core):
//   auto& hits = prometheus::BuildCounter().Name("cache_hits_total").Help("...").Register(*periscope::registry());
// Counter and Gauge updates are lock-free; Histogram::Observe takes a mutex. Don't label by
// request id, user or URL: every label value is a series.
PERISCOPE_API std::shared_ptr<prometheus::Registry> registry();

// A manhole command of the application. `usage` is its argument spec ("NAME [VALUE]",
// "[ITEM...]"): the argument count is checked before `handler` runs. The handler returns the text
// to show. Commands and variables may be added before or after start().
using CommandHandler = std::function<std::string(const std::vector<std::string>& args)>;
PERISCOPE_API Status add_command(const std::string& name, const std::string& usage, const std::string& help,
                                 CommandHandler handler);

// A live variable shown by `vars`, read by `get NAME`, changed by `set NAME VALUE` when a setter
// is given (throw from the setter to reject a value).
PERISCOPE_API Status add_variable(const std::string& name, std::function<std::string()> getter,
                                  std::function<void(const std::string&)> setter = {},
                                  const std::string& help = {});

// A request the slow-request watchdog watches, from construction to destruction. The name (cut
// at 47 bytes) is copied into fixed storage: no allocation, no lock, a few tens of nanoseconds.
// Without a running agent it does nothing. When a request outlives its threshold, the watchdog
// captures the stack of the thread serving it, again every interval while it runs, and records
// its final duration (`periscope slow PID`).
class PERISCOPE_API Request {
 public:
  explicit Request(const char* name, unsigned long long id = 0) noexcept;
  explicit Request(const std::string& name, unsigned long long id = 0) noexcept : Request(name.c_str(), id) {}
  ~Request();
  Request(Request&& other) noexcept : slot_(other.slot_) { other.slot_ = nullptr; }
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // For thread pools and async servers: detach() when the request leaves this thread, attach()
  // on the thread that resumes it. The watchdog captures whichever thread serves it now.
  void detach() noexcept;
  void attach() noexcept;
  bool tracked() const noexcept { return slot_ != nullptr; }  // false without an agent or when full

 private:
  void* slot_;
};

// A threshold for requests of one name, overriding PERISCOPE_SLOW_MS. Kept across start/stop.
PERISCOPE_API Status set_slow_threshold(const std::string& name, std::chrono::milliseconds threshold);

}  // namespace periscope
