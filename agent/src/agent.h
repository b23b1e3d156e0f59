// The agent's lifecycle: one io thread (all signals blocked) running a Boost.Asio io_context that
// serves the manhole socket. At most one agent per process; a forked child gets a fresh one.
//
// Threading: every function here is thread-safe (one lifecycle mutex) except the fork hooks,
// which pthread_atfork calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "manhole/command_registry.h"
#include "manhole/server.h"
#include "manhole/variable_registry.h"
#include "periscope/periscope.h"

namespace periscope::agent {

Status start_agent(const Options& options);
void stop_agent();
bool agent_running();
std::string agent_socket_path();

std::chrono::milliseconds agent_stack_timeout();
std::string agent_http_endpoint();  // "127.0.0.1:9464", empty without HTTP

// The running agent's servers' counters, for metrics (null when not running or without HTTP).
// The counters live as long as the agent: read them on the io thread.
const manhole::ServerCounters* agent_manhole_counters();
struct HttpCounters;
const HttpCounters* agent_http_counters();

class Watchdog;
class Profiling;
// The running agent's profiling session (io thread), or nullptr.
Profiling* agent_profiling();
// The running agent's watchdog (io thread: the commands that use it run there), or nullptr.
Watchdog* agent_watchdog();

// What `info` shows about the agent itself (config, uptime, sessions); null when not running.
nlohmann::json agent_status();

// The process-wide registries; they exist before the agent starts, with the built-ins in them.
manhole::CommandRegistry& command_registry();
manhole::VariableRegistry& variable_registry();

// The pthread_atfork child hook (fork_handling.cpp registers it).
void restart_in_fork_child();

}  // namespace periscope::agent
