#include "agent/src/http/admin_endpoint.h"

#include "agent/src/logging.h"
#include "agent/src/profiling.h"
#include "profiler/pprof.h"

namespace periscope::agent {

namespace {

void serve_profile(Profiling& profiling, const ProfileRequest& request, Respond respond) {
  profile_for(profiling, request.wall ? SampleMode::kWall : SampleMode::kCpu, request.hz,
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

std::unique_ptr<HttpServer> start_admin_endpoint(boost::asio::io_context& io, const Options& options, AdminSources sources,
                                                 std::string* error) {
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
  Profiling& profiling = sources.profiling;
  HttpRouter router(sources.commands, {std::move(sources.metrics_text),
                                       [&profiling](const ProfileRequest& request, Respond respond) {
                                         serve_profile(profiling, request, std::move(respond));
                                       }});
  auto server = std::make_unique<HttpServer>(io, std::move(router), std::move(config));
  if (auto err = server->listen(); !err.empty()) {
    *error = err;
    return nullptr;
  }
  return server;
}

}  // namespace periscope::agent
