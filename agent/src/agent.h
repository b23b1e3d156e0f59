// The agent's lifecycle: one io thread (all signals blocked) running a Boost.Asio io_context that
// serves the manhole socket. At most one agent per process; a forked child gets a fresh one.
// The built-in commands are handed its parts (LiveParts, live_parts.h) when they are registered;
// it fills them in when it starts and empties them when it stops.
//
// Threading: every function here is thread-safe (one lifecycle mutex) except the fork hooks,
// which pthread_atfork calls.
#pragma once

#include <string>

#include "periscope/periscope.h"

namespace periscope::agent {

Status start_agent(const Options& options);
// An agent loaded into a running process by `periscope inject` (inject_entry.cpp).
Status start_injected_agent(const Options& options);
void stop_agent();
// stop_agent, then the signals go back to their default actions: nothing of the agent runs
// any more, its code stays mapped. From any thread but the agent's own.
void eject_agent();
bool agent_running();
std::string agent_socket_path();

std::string agent_http_endpoint();  // "127.0.0.1:9464", empty without HTTP

// The pthread_atfork child hook (fork_handling.cpp registers it).
void restart_in_fork_child();

}  // namespace periscope::agent
