#include "agent/src/http/admin_endpoint.h"

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/random.h>
#include <unistd.h>

#include "agent/src/http/http_guard.h"
#include "manhole/command_runner.h"

#include <boost/asio/steady_timer.hpp>

#include "agent/src/heap/heap_profiles.h"
#include "agent/src/heap/heap_sampler.h"
#include "agent/src/logging.h"
#include "agent/src/own_symbolizer.h"
#include "agent/src/profiling.h"
#include "profiler/pprof.h"

namespace periscope::agent {

namespace {

// Ends early, with nothing sent, when the client goes away: no profile outlives who wanted it.
void serve_profile(Profiling& profiling, const ProfileRequest& request, Respond respond) {
  auto end_early = profile_for(profiling, request.wall ? SampleMode::kWall : SampleMode::kCpu, request.hz,
              std::chrono::duration_cast<std::chrono::milliseconds>(request.duration),
              [respond = std::move(respond)](std::string error, Profile profile) {
                if (!error.empty()) return respond(text_response(409, "cannot profile: " + error + "\n"));
                HttpResponse r;
                r.content_type = "application/octet-stream";
                r.headers.emplace_back("Content-Disposition", "attachment; filename=\"profile\"");
                r.body = to_pprof_gz(profile);
                respond(std::move(r));
              });
  if (request.on_abandoned) *request.on_abandoned = std::move(end_early);
}

HttpResponse heap_response(const HeapProfile& profile, bool allocs) {
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.headers.emplace_back("Content-Disposition", std::string("attachment; filename=\"") + (allocs ? "allocs" : "heap") + "\"");
  r.body = heap_to_pprof_gz(profile, allocs ? HeapValue::kAllocSpace : HeapValue::kInuseSpace);
  return r;
}

// The profile as it is, or (?seconds=N) the change over N seconds; a client that goes away
// before then gets nothing and leaves nothing behind.
void serve_heap(boost::asio::io_context& io, const HeapRequest& request, Respond respond) {
  const HeapState state = heap_state();
  if (!state.on && state.rate == 0) {
    const std::string problem = heap_sampling_unavailable();
    return respond(text_response(409, "heap profiling is off: start it with `periscope heap PID --start` or "
                                      "PERISCOPE_HEAP=on" + (problem.empty() ? std::string() : "; but " + problem) + "\n"));
  }
  refresh_heap_patches();
  if (request.delta.count() == 0) return respond(heap_response(named_heap_profile(), request.allocs));
  auto timer = std::make_shared<boost::asio::steady_timer>(io, request.delta);
  timer->async_wait([timer, before = raw_heap_profile(), allocs = request.allocs,
                     respond = std::move(respond)](const boost::system::error_code& ec) {
    if (ec) return;  // abandoned
    HeapProfile delta = heap_delta(before, raw_heap_profile());
    auto held = own_symbolizer_lock();
    name_heap_stacks(delta, own_symbolizer(held));
    respond(heap_response(delta, allocs));
  });
  if (request.on_abandoned) *request.on_abandoned = [timer] { timer->cancel(); };
}

std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

// 32 random bytes as hex: what a client other than the owner must send.
std::string random_token() {
  unsigned char bytes[32];
  for (size_t got = 0; got < sizeof bytes;) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) throw std::runtime_error("getrandom failed");
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) out += {kHex[b >> 4], kHex[b & 15]};
  return out;
}

// The operator's token (PERISCOPE_HTTP_TOKEN_FILE), or a fresh one written for the owner to read.
bool set_up_token(const Options& options, const std::string& default_file, HttpGuardConfig* guard,
                  std::string* error) {
  if (!options.http_token_file.empty()) {
    std::ifstream in(options.http_token_file);
    std::getline(in, guard->token);
    guard->token.erase(guard->token.find_last_not_of(" \t\r") + 1);
    if (guard->token.empty()) {
      *error = "PERISCOPE_HTTP_TOKEN_FILE=" + options.http_token_file + ": cannot read a token from it";
      return false;
    }
    guard->token_file = options.http_token_file;
    return true;
  }
  guard->token = random_token();
  guard->token_file = default_file;
  int fd = ::open(default_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  const std::string line = guard->token + "\n";
  const bool written = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (fd >= 0) ::close(fd);
  if (!written) log_line("HTTP endpoint: cannot write its token to " + default_file + "; only uid " +
                         std::to_string(guard->owner) + " and root can use /debug/");
  if (!written) guard->token.clear();
  return true;
}

}  // namespace

std::unique_ptr<HttpServer> start_admin_endpoint(boost::asio::io_context& io, const Options& options, AdminSources sources,
                                                 std::string* error) {
  auto address = parse_http_address(options.http, error);
  if (!address) {
    *error = "PERISCOPE_HTTP=" + *error;
    return nullptr;
  }
  HttpGuardConfig guard;
  guard.owner = ::geteuid();
  guard.hosts = split_names(options.http_hosts);
  if (!set_up_token(options, sources.token_file, &guard, error)) return nullptr;
  HttpServerConfig config;
  config.address = *address;
  config.max_connections = options.http_max_connections;
  config.timeout = options.http_timeout;
  config.log = log_line;
  Profiling& profiling = sources.profiling;
  const manhole::CommandRegistry& commands = sources.commands;
  HttpRouter router(commands,
                    {std::move(sources.metrics_text),
                     [&profiling](const ProfileRequest& request, Respond respond) {
                       serve_profile(profiling, request, std::move(respond));
                     },
                     [&commands, &io, timeout = options.command_timeout](
                         const std::vector<std::string>& words, std::function<void(protocol::Reply)> done) {
                       manhole::run_command(commands, words, io, timeout, std::move(done));
                     },
                     [&io](const HeapRequest& request, Respond respond) { serve_heap(io, request, std::move(respond)); }},
                    guard);
  auto server = std::make_unique<HttpServer>(io, std::move(router), std::move(config));
  if (auto err = server->listen(); !err.empty()) {
    *error = err;
    return nullptr;
  }
  return server;
}

}  // namespace periscope::agent
