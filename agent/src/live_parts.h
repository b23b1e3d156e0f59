// The running agent's parts that the built-in commands and /metrics use. The commands are
// registered once per process, before any agent starts (so that an application cannot take their
// names); each is handed, at registration, the parts it needs from here. The agent fills them in
// when it starts and empties them when it stops, so a command finds null between agents.
//
// Threading: the agent sets the pointers before its io thread starts (and, for HTTP started late,
// on the io thread) and clears them after that thread ended; commands read them on the io thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "periscope/periscope.h"

namespace periscope::manhole {
struct ServerCounters;
}

namespace periscope::agent {

class Watchdog;
class Profiling;
struct HttpCounters;

// What `info` shows about the agent itself.
struct AgentFacts {
  std::string version;
  std::string socket;
  std::string http;  // "127.0.0.1:9464", empty without HTTP
  double uptime_s = 0;
  int stack_signal = 0;
  int profile_signal = 0;
  Options options;         // as the agent runs with them; `info` shows them (describe_options)
  std::string socket_dir;
  bool injected = false;   // started by `periscope inject`, not by LD_PRELOAD or the host
};

struct LiveParts {
  std::atomic<Watchdog*> watchdog{nullptr};
  std::atomic<Profiling*> profiling{nullptr};
  std::atomic<const manhole::ServerCounters*> sessions{nullptr};
  std::atomic<const HttpCounters*> http{nullptr};
  std::atomic<int64_t> stack_timeout_ms{Options{}.stack_timeout.count()};
  std::function<std::optional<AgentFacts>()> facts;  // set once, by the agent's lifecycle
  std::function<void()> eject;  // set once: stops the agent from a thread of its own, soon after
};

}  // namespace periscope::agent
