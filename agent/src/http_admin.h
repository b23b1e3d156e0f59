// The agent's HTTP admin endpoint (PERISCOPE_HTTP): the HttpServer wired to the agent's metrics,
// profiler and command registry.
#pragma once

#include <memory>
#include <string>

#include "agent/src/http/http_server.h"
#include "periscope/periscope.h"

namespace periscope::agent {

// Listens on options.http; nullptr and `error` set when it cannot.
std::unique_ptr<HttpServer> start_http_admin(boost::asio::io_context& io, const Options& options, std::string* error);

}  // namespace periscope::agent
