#include "agent/src/http_admin.h"

#include "agent/src/agent.h"
#include "agent/src/logging.h"
#include "agent/src/metrics/metrics.h"
#include "agent/src/profiling.h"
#include "profiler/pprof.h"

namespace periscope::agent {

namespace {

void serve_profile(const ProfileRequest& request, Respond respond) {
  Profiling* profiling = agent_profiling();
  if (!profiling) return respond(text_response(503, "the agent is stopping\n"));
  profile_for(*profiling, request.wall ? SampleMode::kWall : SampleMode::kCpu, request.hz,
              std::chrono::duration_cast<std::chrono::milliseconds>(request.duration),
              [respond = std::move(respond)](std::string error, Profile profile) {
                if (!error.empty()) return respond(text_response(409, "cannot profile: " + error + "\n"));
                HttpResponse r;
                r.content_type = "application/octet-stream";
                r.headers.emplace_back("Content-Disposition", "attachment; filename=\"profile\"");
                r.body = to_pprof_gz(profile);
                respond(std::move(r));
              });
}

}  // namespace

std::unique_ptr<HttpServer> start_http_admin(boost::asio::io_context& io, const Options& options, std::string* error) {
  auto address = parse_http_address(options.http, error);
  if (!address) {
    *error = "PERISCOPE_HTTP=" + *error;
    return nullptr;
  }
  HttpServerConfig config;
  config.address = *address;
  config.max_connections = options.http_max_connections;
  config.timeout = options.http_timeout;
  config.log = log_line;
  HttpRouter router(command_registry(), {[] { return metrics_text(); }, serve_profile});
  auto server = std::make_unique<HttpServer>(io, std::move(router), std::move(config));
  if (auto err = server->listen(); !err.empty()) {
    *error = err;
    return nullptr;
  }
  return server;
}

}  // namespace periscope::agent
