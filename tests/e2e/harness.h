// End-to-end test harness: start real processes (targets with the agent preloaded, the periscope
// CLI), talk to them through pipes and sockets, and wait for things with deadlines, never sleeps
// of fixed length.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::test {

using namespace std::chrono_literals;

// A process's run_as when it runs as the test does, or as nobody.
inline constexpr uid_t kSameUser = static_cast<uid_t>(-1);
inline constexpr uid_t kNobody = 65534;

// Paths baked in by CMake.
std::string cli_path();
std::string agent_path();
// What LD_PRELOAD must hold to load the agent: the agent, after the sanitizer runtime in
// sanitizer builds (it must come first).
std::string agent_preload();
std::string target_path(const std::string& name);  // a program in tests/targets or examples
std::string source_path(const std::string& relative);  // a file of the source tree
std::string plugin_path();  // tests/targets/plugin.cpp, built as a loadable module
// The 1-based number of the first line of `file` that contains `marker`, or 0.
int marker_line(const std::string& file, const std::string& marker);

using Env = std::map<std::string, std::string>;  // added to (or, with empty value, removed from) ours

// A child process with its stdin and stdout on pipes and its stderr in a file.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const Env& env, uid_t run_as = kSameUser);
  ~Process();  // kills and reaps if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void write_stdin(const std::string& text);
  void close_stdin();
  // The next stdout line, or nullopt at EOF or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s);
  std::string stderr_text() const;
  // Waits for exit; returns the exit status (128+signal when killed), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = 10s);
  void kill(int sig);

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string stdout_buffer_;
  bool reaped_ = false;
};

// The whole file, or "" if it cannot be read.
std::string slurp(const std::string& path);

// CPU seconds used so far by the thread of `pid` named `name` (utime + stime, 10 ms ticks), -1 if
// none.
double thread_cpu_seconds(pid_t pid, const std::string& name);
// Line `n` (0: the first) of `text`, or "" when it has fewer.
std::string line_of(const std::string& text, size_t n);

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a program to completion (killed after `timeout`) and collects its output.
RunResult run(const std::vector<std::string>& argv, const Env& env = {}, const std::string& stdin_text = {},
              uid_t run_as = kSameUser, std::chrono::milliseconds timeout = 30s);
// Runs the periscope CLI with `args`.
RunResult periscope(const std::vector<std::string>& args, const Env& env = {},
                    uid_t run_as = kSameUser);

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);
bool file_exists(const std::string& path);

// Whether a profile runs in the agent of process `pid` (`profile status`).
bool profile_running(const std::string& pid);

// Headless Chromium opens `url` (our self-contained flame graphs: no network) with its profile in
// `scratch_dir`, runs the page's script, and gives the DOM after it: what a user would see.
RunResult headless_dom(const std::string& url, const std::string& scratch_dir);

// The tests start targets as their children and run periscope (and eu-stack) beside them, not as
// their parents: ptrace of such a sibling needs root or kernel.yama.ptrace_scope 0.
bool may_ptrace_siblings();
#define SKIP_UNLESS_PTRACE_ALLOWED() \
  do { \
    if (!::periscope::test::may_ptrace_siblings()) GTEST_SKIP() << "ptrace of a sibling needs root or ptrace_scope 0"; \
  } while (0)

// A private socket directory for one test, removed afterwards.
class SocketDir {
 public:
  SocketDir();
  ~SocketDir();
  const std::string& path() const { return path_; }
  std::string socket_for(pid_t pid) const;
  Env env() const;  // PERISCOPE_SOCKET_DIR=<path>

 private:
  std::string path_;
};

// Starts host_target with the agent preloaded and waits until its socket answers.
class AgentTarget {
 public:
  explicit AgentTarget(const SocketDir& dir, Env extra_env = {});
  Process& process() { return process_; }
  pid_t pid() const { return process_.pid(); }
  std::string socket() const { return socket_; }

 private:
  Process process_;
  std::string socket_;
};

// A raw client connection to a manhole socket (or, with tcp(), to "HOST:PORT").
class RawConnection {
 public:
  explicit RawConnection(const std::string& socket_path, uid_t run_as = kSameUser);
  static RawConnection tcp(const std::string& ipv4_address_and_port);
  RawConnection(RawConnection&& other) noexcept;
  ~RawConnection();
  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }
  void send(const std::string& bytes);
  // Reads until `marker` appears (returns all text read up to and including it), EOF, or timeout.
  std::string read_until(const std::string& marker, std::chrono::milliseconds timeout = 5s);
  std::string read_line(std::chrono::milliseconds timeout = 5s) { return read_until("\n", timeout); }
  // True when the peer closed the connection (EOF) within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout = 5s);

 private:
  RawConnection() = default;
  int fd_ = -1;
  int connect_errno_ = 0;
  std::string buffer_;
};

// One HTTP/1.1 request with "Connection: close" over a fresh TCP connection.
struct HttpResult {
  int status = 0;  // 0: no response
  std::string headers;  // the status line and header lines, as received
  std::string body;
};
HttpResult http_request(const std::string& address, const std::string& method, const std::string& target,
                        std::chrono::milliseconds timeout = 10s);
// The same with extra header lines ("Origin: https://evil.example"; a "Host: ..." line replaces
// the address as Host) and a body (Content-Length is added).
HttpResult http_request(const std::string& address, const std::string& method, const std::string& target,
                        const std::vector<std::string>& headers, const std::string& body = {},
                        std::chrono::milliseconds timeout = 10s);

// The demo server with the agent's HTTP endpoint on a free port (PERISCOPE_HTTP=127.0.0.1:0).
class DemoWithHttp {
 public:
  explicit DemoWithHttp(const SocketDir& dir, Env extra_env = {});
  Process& process() { return process_; }
  pid_t pid() const { return process_.pid(); }
  const std::string& demo() const { return demo_; }    // the demo's own HTTP, "127.0.0.1:PORT"
  const std::string& admin() const { return admin_; }  // the agent's HTTP endpoint

 private:
  Process process_;
  std::string demo_;
  std::string admin_;
};

}  // namespace periscope::test
