// Plumbing for running real servers in end-to-end tests: private directories, free loopback
// ports, pidfiles, and the exit status of daemons that are not our children (we become their
// subreaper, so a daemon that forks away from its launcher is still ours to wait for).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it when this goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 nobody listens on right now.
int free_loopback_port();

// Makes this process the reaper of its descendants' orphans (PR_SET_CHILD_SUBREAPER), so
// daemons started after this call can be waited for. Call before starting them.
void become_subreaper();

// The pid written in `path`, or nullopt while the file is missing or incomplete.
std::optional<pid_t> read_pidfile(const std::string& path);

// Waits for `pid` (a child or an orphan we reap) to end; its exit status (128+signal when
// killed), or nullopt when it still runs after `timeout`. A pid that is not ours to wait for
// gives -1 once it has gone.
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);
// "exit status 0", "killed by signal 11 (Segmentation fault)", ...
std::string describe_exit(std::optional<int> status);
// Kills and reaps `pid` if it still runs; for destructors of servers whose test failed midway.
void kill_and_reap(pid_t pid);

// A pid the test must not leave running: killed and reaped when this goes away, unless released
// (after it was seen to end). Also covers a server whose start failed halfway.
class OwnedPid {
 public:
  OwnedPid() = default;
  ~OwnedPid() { kill_and_reap(pid_); }
  OwnedPid(const OwnedPid&) = delete;
  OwnedPid& operator=(const OwnedPid&) = delete;
  void own(pid_t pid) { pid_ = pid; }
  void release() { pid_ = 0; }
  pid_t get() const { return pid_; }

 private:
  pid_t pid_ = 0;
};

bool process_running(pid_t pid);  // exists and is not a zombie
std::vector<pid_t> children_of(pid_t parent);
std::string cmdline_of(pid_t pid);  // arguments joined by spaces (a server's retitled name)
std::string user_of(pid_t pid);     // the real uid's user name
std::string exe_of(pid_t pid);      // the executable's resolved path

std::string last_lines(const std::string& text, int count);

}  // namespace periscope::test
