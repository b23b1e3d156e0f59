// Finding processes that carry an agent: every listening Unix socket named "<pid>.sock" (from
// /proc/net/unix; or bound, about to listen) whose pid is alive, confirmed through /proc/<pid>/fd where we may read it.
// Works for agents of every user and any PERISCOPE_SOCKET_DIR, as long as they share our
// network namespace; default directories are checked as a fallback.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::viewer {

struct AgentEndpoint {
  pid_t pid = 0;
  std::string socket_path;
};

std::vector<AgentEndpoint> find_agents();  // sorted by pid
std::optional<std::string> find_agent_socket(pid_t pid);

// The socket for `pid`, or a CliError that says exactly why there is none (no such process,
// no agent in it).
std::string require_agent_socket(pid_t pid);

}  // namespace periscope::viewer
