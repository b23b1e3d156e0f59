// The agent's HTTP admin endpoint (PERISCOPE_HTTP): the HttpServer wired to what the agent hands
// it: its command registry, its metrics and its profiler.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/src/http/http_server.h"
#include "manhole/command_registry.h"
#include "periscope/periscope.h"

namespace periscope::agent {

class Profiling;

struct AdminSources {
  const manhole::CommandRegistry& commands;
  std::function<std::string()> metrics_text;  // io thread
  Profiling& profiling;                       // lives as long as the endpoint
  std::string token_file;                     // where a fresh bearer token goes (0600)
};

// Listens on options.http; nullptr and `error` set when it cannot.
std::unique_ptr<HttpServer> start_admin_endpoint(boost::asio::io_context& io, const Options& options, AdminSources sources,
                                                 std::string* error);

}  // namespace periscope::agent
