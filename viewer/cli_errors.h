// How the viewer fails: one line on stderr ("periscope: ...") and an exit code that says why.
#pragma once

#include <stdexcept>
#include <string>

namespace periscope::viewer {

enum ExitCode : int {
  kExitOk = 0,
  kExitCommandFailed = 1,   // the agent ran the command and reported an error
  kExitUsage = 2,           // bad command line
  kExitNoProcess = 3,       // no such process, or it has no agent
  kExitPermission = 4,      // not allowed to talk to that process
  kExitConnection = 5,      // connection lost, timeout, protocol error
  kExitPartial = 6,         // a recording ended early (the target exited, took the signal): what was taken is written
};

class CliError : public std::runtime_error {
 public:
  CliError(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Prints "periscope: <message>" on stderr.
void print_error(const std::string& message);

}  // namespace periscope::viewer
