#include "agent/src/agent.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <unistd.h>

#include "agent/src/builtin_commands.h"
#include "agent/src/config.h"
#include "agent/src/fork_handling.h"
#include "agent/src/http_admin.h"
#include "agent/src/logging.h"
#include "agent/src/profiling.h"
#include "agent/src/watchdog/fast_clock.h"
#include "agent/src/watchdog/request_api.h"
#include "agent/src/watchdog/watchdog.h"
#include "manhole/owned_fds.h"
#include "manhole/server.h"
#include "manhole/socket_location.h"
#include "manhole/standard_commands.h"
#include "profiler/process_info.h"
#include "profiler/sampler.h"
#include "profiler/stack_capture.h"

namespace periscope::agent {

namespace asio = boost::asio;

namespace {

struct Agent {
  Options options;
  std::string socket_dir;
  pid_t owner_pid = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::unique_ptr<manhole::Server> server;
  std::unique_ptr<HttpServer> http;  // null when PERISCOPE_HTTP is not set or it could not listen
  std::string http_endpoint;
  std::unique_ptr<Watchdog> watchdog;
  ProfilingPtr profiling;
  std::thread thread;
};

std::mutex g_lifecycle;
Agent* g_agent = nullptr;  // guarded by g_lifecycle; deliberately leaked at exit and in fork children

// What the atexit handler removes; plain storage because it runs during exit.
char g_socket_to_remove[108];
char g_http_file_to_remove[108];
pid_t g_socket_owner = 0;

void remove_socket_at_exit() {
  if (g_socket_owner != ::getpid()) return;
  if (g_socket_to_remove[0]) ::unlink(g_socket_to_remove);
  if (g_http_file_to_remove[0]) ::unlink(g_http_file_to_remove);
}

void copy_path(const std::string& path, char (&to)[108]) {
  path.copy(to, sizeof to - 1);
  to[std::min(path.size(), sizeof to - 1)] = '\0';
}

// The HTTP endpoint is optional: when it cannot start, the agent runs without it (one line says why).
void start_http(Agent& agent) {
  if (agent.options.http.empty()) return;
  std::string error;
  agent.http = start_http_admin(agent.io, agent.options, &error);
  if (!agent.http) {
    log_line("HTTP endpoint is off: " + error);
    return;
  }
  agent.http_endpoint = format_http_address(agent.http->address());
  const std::string file = manhole::http_address_file(agent.server->socket_path());
  std::ofstream out(file, std::ios::trunc);
  out << agent.http_endpoint << "\n";
  if (out.good()) copy_path(file, g_http_file_to_remove);
  if (agent.options.verbose) log_line("HTTP endpoint on http://" + agent.http_endpoint + "/");
}

void run_io(Agent* agent) {
  ::pthread_setname_np(::pthread_self(), "periscope");
  for (;;) {
    try {
      agent->io.run();
      return;
    } catch (const std::exception& e) {
      log_line(std::string("agent: a handler failed and was skipped: ") + e.what());
    } catch (...) {
      log_line("agent: a handler failed and was skipped");
    }
  }
}

// Starts the io thread with every signal blocked, so the host's signals never land on it.
void start_io_thread(Agent* agent) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    agent->thread = std::thread(run_io, agent);
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

std::string process_name() {
  auto info = read_process_info(::getpid());
  return info ? info->name : std::string("?");
}

Status start_locked(const Options& options) {
  if (g_agent) return Status::success();
  if (!options.enabled) return Status::failure("agent is disabled (PERISCOPE_DISABLE)");
  install_fork_handlers_once();
  auto agent = std::make_unique<Agent>();
  agent->options = options;
  agent->owner_pid = ::getpid();
  agent->socket_dir = options.socket_dir.empty() ? manhole::default_socket_dir() : options.socket_dir;
  if (auto err = manhole::prepare_socket_dir(agent->socket_dir); !err.empty()) return Status::failure(err);
  manhole::remove_stale_sockets(agent->socket_dir);

  manhole::ServerConfig config;
  config.socket_path = manhole::socket_path(agent->socket_dir, agent->owner_pid);
  config.max_connections = options.max_connections;
  config.session.idle_timeout = options.idle_timeout;
  const std::string name = process_name();
  config.session.banner = "periscope " PERISCOPE_VERSION_STRING " attached to pid " +
                          std::to_string(agent->owner_pid) + " (" + name +
                          "). Type 'help' for commands, 'quit' to leave.\n";
  config.session.hello_frame =
      manhole::encode_hello_frame(agent->owner_pid, name, PERISCOPE_VERSION_STRING);
  config.log = log_line;
  agent->server = std::make_unique<manhole::Server>(agent->io, command_registry(), std::move(config));
  if (auto err = agent->server->listen(); !err.empty()) return Status::failure(err);

  const std::string& path = agent->server->socket_path();
  copy_path(path, g_socket_to_remove);
  g_http_file_to_remove[0] = '\0';
  g_socket_owner = agent->owner_pid;
  static bool atexit_registered = (std::atexit(remove_socket_at_exit) == 0);
  (void)atexit_registered;

  if (auto err = StackCapture::install(options.stack_signal); !err.empty()) {
    log_line("stack capture is off: " + err);  // the rest of the agent works without it
  }
  init_fast_clock();
  auto* table = new RequestTable({static_cast<size_t>(options.max_inflight),
                                  static_cast<size_t>(options.max_request_names), options.slow_threshold.count()});
  apply_saved_thresholds(*table);
  WatchdogConfig watchdog_config;
  watchdog_config.capture_interval = options.slow_interval;
  watchdog_config.capture_timeout = options.stack_timeout;
  watchdog_config.keep = static_cast<size_t>(options.slow_keep);
  watchdog_config.log_path = options.slow_log;
  watchdog_config.log_stderr = options.slow_stderr;
  agent->watchdog = std::make_unique<Watchdog>(agent->io, *table, watchdog_config);
  asio::post(agent->io, [watchdog = agent->watchdog.get()] { watchdog->start(); });
  set_request_table(table);  // from now on periscope::Request is tracked
  if (auto err = Sampler::install(options.profile_signal); !err.empty()) log_line("profiling is off: " + err);
  agent->profiling = make_profiling(agent->io, options.profile_timers_only);
  if (auto err = start_whole_run_profile(agent->io, *agent->profiling, options.profile, options.profile_out);
      !err.empty()) {
    log_line(err);
  }
  start_http(*agent);
  start_io_thread(agent.get());
  if (options.verbose) log_line("agent " PERISCOPE_VERSION_STRING " listening on " + path);
  g_agent = agent.release();
  return Status::success();
}

}  // namespace

manhole::CommandRegistry& command_registry() {
  // Leaked on purpose: commands may run on the io thread while the process exits.
  static manhole::CommandRegistry* registry = [] {
    auto* r = new manhole::CommandRegistry;
    std::string err = manhole::add_standard_commands(*r, variable_registry());
    if (err.empty()) err = add_builtin_commands(*r);
    if (!err.empty()) log_line("agent: built-in commands incomplete: " + err);
    return r;
  }();
  return *registry;
}

manhole::VariableRegistry& variable_registry() {
  static auto* registry = new manhole::VariableRegistry;
  return *registry;
}

Status start_agent(const Options& options) {
  try {
    command_registry();  // built-ins exist before the first session
    std::lock_guard lock(g_lifecycle);
    return start_locked(options);
  } catch (const std::exception& e) {
    return Status::failure(std::string("agent failed to start: ") + e.what());
  } catch (...) {
    return Status::failure("agent failed to start");
  }
}

void stop_agent() {
  Agent* agent = nullptr;
  {
    std::lock_guard lock(g_lifecycle);
    std::swap(agent, g_agent);
  }
  if (!agent) return;
  try {
    set_request_table(nullptr);
    asio::post(agent->io, [agent] {
      agent->watchdog->stop();
      stop_profiling(*agent->profiling);
      if (agent->http) agent->http->stop();
      agent->server->stop();
      agent->work.reset();
      agent->io.stop();
    });
    if (agent->thread.get_id() == std::this_thread::get_id()) {
      agent->thread.detach();  // stopped from a command handler: the thread ends by itself
      return;                  // and the agent is leaked rather than freed under its own feet
    }
    agent->thread.join();
    if (g_socket_owner == ::getpid()) {
      g_socket_to_remove[0] = '\0';
      if (g_http_file_to_remove[0]) ::unlink(g_http_file_to_remove);
      g_http_file_to_remove[0] = '\0';
    }
    delete agent;
  } catch (...) {
  }
}

bool agent_running() {
  std::lock_guard lock(g_lifecycle);
  return g_agent != nullptr;
}

std::string agent_socket_path() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->server->socket_path() : std::string();
}

std::chrono::milliseconds agent_stack_timeout() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->options.stack_timeout : Options{}.stack_timeout;
}

std::string agent_http_endpoint() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->http_endpoint : std::string();
}

const manhole::ServerCounters* agent_manhole_counters() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? &g_agent->server->counters() : nullptr;
}

const HttpCounters* agent_http_counters() {
  std::lock_guard lock(g_lifecycle);
  return g_agent && g_agent->http ? &g_agent->http->counters() : nullptr;
}

Profiling* agent_profiling() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->profiling.get() : nullptr;
}

Watchdog* agent_watchdog() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->watchdog.get() : nullptr;
}

nlohmann::json agent_status() {
  std::lock_guard lock(g_lifecycle);
  if (!g_agent) return nullptr;
  const auto& c = g_agent->server->counters();
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_agent->started).count();
  return {{"version", PERISCOPE_VERSION_STRING},
          {"socket", g_agent->server->socket_path()},
          {"http", g_agent->http_endpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(g_agent->http_endpoint)},
          {"agent_uptime_s", up},
          {"sessions_active", c.active.load()},
          {"connections_accepted", c.accepted.load()},
          {"connections_refused_uid", c.refused_uid.load()},
          {"connections_refused_busy", c.refused_busy.load()},
          {"stack_signal", StackCapture::signal_number()},
          {"profile_signal", Sampler::signal_number()},
          {"config", describe_options(g_agent->options, g_agent->socket_dir)}};
}

void lock_for_fork() {
  g_lifecycle.lock();
  command_registry().mutex().lock();
  variable_registry().mutex().lock();
  manhole::lock_fd_table_for_fork();
}

void unlock_in_fork_parent() {
  manhole::unlock_fd_table_in_fork_parent();
  variable_registry().mutex().unlock();
  command_registry().mutex().unlock();
  g_lifecycle.unlock();
}

void restart_in_fork_child() {
  // The child has one thread (this one) and the parent's agent objects, whose io thread is gone:
  // never touch them. Close the sockets, forget the agent, and start afresh if allowed.
  // (Asio's epoll, eventfd and timerfd stay open in the child, inert: they are close-on-exec,
  // and nothing in Asio lets us close them without the parent's io thread.)
  manhole::close_fd_table_in_fork_child();
  StackCapture::reset_in_fork_child();
  Sampler::reset_in_fork_child();
  set_request_table(nullptr);  // the child gets a table of its own if its agent restarts
  reset_cached_tid_in_fork_child();
  variable_registry().mutex().unlock();
  command_registry().mutex().unlock();
  Agent* parent_agent = g_agent;
  g_agent = nullptr;
  g_socket_to_remove[0] = '\0';
  g_http_file_to_remove[0] = '\0';
  g_lifecycle.unlock();
  if (!parent_agent || !parent_agent->options.restart_after_fork) return;
  Status s = start_agent(parent_agent->options);
  if (!s.ok()) log_line("agent did not restart in the forked child: " + s.message());
}

}  // namespace periscope::agent
