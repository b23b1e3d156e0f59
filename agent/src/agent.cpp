#include "agent/src/agent.h"
#include "agent/src/crash/crash_report.h"
#include "agent/src/heap/heap_sampler.h"

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

#include "agent/src/config.h"
#include "agent/src/fork_handling.h"
#include "agent/src/watchdog/request_table.h"
#include "agent/src/http/http_address.h"
#include "agent/src/http/admin_endpoint.h"
#include "agent/src/metrics/metrics.h"
#include "agent/src/registries.h"
#include "agent/src/logging.h"
#include "agent/src/own_symbolizer.h"
#include "agent/src/profiling.h"
#include "agent/src/watchdog/fast_clock.h"
#include "agent/src/api/saved_thresholds.h"
#include "agent/src/watchdog/watchdog.h"
#include "manhole/command_runner.h"
#include "manhole/owned_fds.h"
#include "manhole/quiet_thread.h"
#include "manhole/server.h"
#include "protocol/socket_location.h"
#include "manhole/standard_commands.h"
#include "profiler/proc_reader.h"
#include "profiler/process_info.h"
#include "profiler/capture/sampler.h"
#include "profiler/capture/stack_capture.h"

namespace periscope::agent {

namespace asio = boost::asio;

Status start_agent_forked_from(const Options& options, pid_t forked_from, bool injected = false);

namespace {

struct Agent {
  Options options;
  bool injected = false;
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
  // A fork child with a fixed HTTP port leaves it to its parent while the parent lives (pre-fork
  // workers), and takes it over when the parent exits (a daemon whose launcher exits).
  pid_t http_parent = 0;  // 0: not waiting
  bool http_wait_logged = false;
};

std::mutex g_lifecycle;
Agent* g_agent = nullptr;  // guarded by g_lifecycle; deliberately leaked at exit and in fork children

// What the atexit handler removes; plain storage because it runs during exit.
char g_socket_to_remove[108];
char g_http_file_to_remove[108];
char g_token_file_to_remove[108];
pid_t g_socket_owner = 0;

void remove_socket_at_exit() {
  if (g_socket_owner != ::getpid()) return;
  if (g_socket_to_remove[0]) ::unlink(g_socket_to_remove);
  if (g_http_file_to_remove[0]) ::unlink(g_http_file_to_remove);
  if (g_token_file_to_remove[0]) ::unlink(g_token_file_to_remove);
}

void copy_path(const std::string& path, char (&to)[108]) {
  path.copy(to, sizeof to - 1);
  to[std::min(path.size(), sizeof to - 1)] = '\0';
}

bool fixed_http_port(const Options& options) {
  std::string error;
  auto address = parse_http_address(options.http, &error);
  return address && address->port != 0;
}

// The HTTP endpoint is optional: when it cannot start, the agent runs without it (one line says why).
void start_http(Agent& agent, bool quiet = false) {
  if (agent.options.http.empty()) return;
  std::string error;
  const std::string token_file = protocol::http_token_file(agent.server->socket_path());
  agent.http = start_admin_endpoint(
      agent.io, agent.options,
      {command_registry(), [] { return metrics_text(live_parts()); }, *agent.profiling, token_file}, &error);
  if (agent.options.http_token_file.empty()) copy_path(token_file, g_token_file_to_remove);
  if (!agent.http) {
    if (!quiet) log_line("HTTP endpoint is off: " + error);
    return;
  }
  live_parts().http.store(&agent.http->counters());
  agent.http_endpoint = format_http_address(agent.http->address());
  const std::string file = protocol::http_address_file(agent.server->socket_path());
  std::ofstream out(file, std::ios::trunc);
  out << agent.http_endpoint << "\n";
  if (out.good()) copy_path(file, g_http_file_to_remove);
  if (agent.options.verbose) log_line("HTTP endpoint on http://" + agent.http_endpoint + "/");
}

void start_http_when_parent_is_gone(Agent& agent) {
  if (agent.http_parent == 0) return;
  if (::getppid() == agent.http_parent) {
    if (!agent.http_wait_logged && agent.options.verbose) {
      log_line("HTTP endpoint: port " + agent.options.http + " stays with the parent (pid " +
               std::to_string(agent.http_parent) + ") while it lives");
    }
    agent.http_wait_logged = true;
    return;
  }
  start_http(agent, /*quiet=*/true);  // the parent may not have let go of the port yet: try again later
  if (agent.http) agent.http_parent = 0;
}

Status start_locked(const Options& options, pid_t forked_from, bool injected);
void reset_capture_after_fork();
std::optional<AgentFacts> facts_of_running_agent();
void eject_from_command();

// The built-in commands and /metrics reach this agent's parts through live_parts() (registries.h).
void hand_parts_to_commands(Agent& agent) {
  LiveParts& parts = live_parts();
  parts.watchdog.store(agent.watchdog.get());
  parts.profiling.store(agent.profiling.get());
  parts.sessions.store(&agent.server->counters());
  parts.http.store(agent.http ? &agent.http->counters() : nullptr);
  parts.stack_timeout_ms.store(agent.options.stack_timeout.count());
}

// Only this agent's: another may have started since this one was taken out of g_agent.
void take_parts_from_commands(Agent& agent) {
  LiveParts& parts = live_parts();
  auto clear = [](auto& slot, auto* mine) {
    auto expected = mine;
    slot.compare_exchange_strong(expected, nullptr);
  };
  clear(parts.watchdog, agent.watchdog.get());
  clear(parts.profiling, agent.profiling.get());
  clear(parts.sessions, &agent.server->counters());
  if (agent.http) clear(parts.http, &agent.http->counters());
}
void restart_on_fresh_descriptors(Agent* agent, const std::string& lost);

// Between slices of the io loop (so it runs even when the host broke the loop's own descriptors).
// False when this agent was replaced and its thread must end.
bool housekeeping(Agent* agent) {
  if (auto lost = manhole::first_lost_fd(); !lost.empty()) {
    restart_on_fresh_descriptors(agent, lost);
    return false;
  }
  start_http_when_parent_is_gone(*agent);
  release_own_symbolizer_if_idle();
  return true;
}

void run_io(Agent* agent) {
  ::pthread_setname_np(::pthread_self(), "periscope");
  for (;;) {
    try {
      agent->io.run_for(std::chrono::milliseconds(500));
      if (agent->io.stopped() || !housekeeping(agent)) return;
    } catch (const std::exception& e) {
      log_line(std::string("agent: a handler failed and was skipped: ") + e.what());
    } catch (...) {
      log_line("agent: a handler failed and was skipped");
    }
  }
}

// Starts the io thread with every signal blocked, so the host's signals never land on it.
void start_io_thread(Agent* agent) { agent->thread = manhole::start_quiet_thread([agent] { run_io(agent); }); }

std::string process_name() {
  auto info = read_process_info(::getpid());
  return info ? info->name : std::string("?");
}

// `forked_from`: the parent's pid when this is a fork child's agent, else 0.
Status start_locked(const Options& options, pid_t forked_from, bool injected) {
  if (g_agent) return Status::success();
  if (!options.enabled) return Status::failure("agent is disabled (PERISCOPE_DISABLE)");
  install_fork_handlers_once();
  reset_capture_after_fork();  // a fork child that starts an agent itself (PERISCOPE_FORK=off)
  (void)proc::proc_dir_fd();  // taken now, so that /proc stays readable if the host chroots
  const std::vector<int> fds_before = manhole::open_fd_numbers();
  auto agent = std::make_unique<Agent>();
  agent->options = options;
  agent->injected = injected;
  agent->owner_pid = ::getpid();
  agent->socket_dir = options.socket_dir.empty() ? protocol::default_socket_dir() : options.socket_dir;
  if (auto err = protocol::prepare_socket_dir(agent->socket_dir); !err.empty()) {
    // A fork child that dropped privileges before its agent started (a root master's workers
    // becoming www-data) cannot use its parent's directory, nor can an agent injected into a
    // daemon that dropped them after reading its environment: each gets one of its own uid's.
    const std::string own = "/tmp/periscope-" + std::to_string(::geteuid());
    if ((forked_from == 0 && !injected) || own == agent->socket_dir || !protocol::prepare_socket_dir(own).empty()) {
      return Status::failure(err);
    }
    log_line("agent: " + err + "; this " + (injected ? "injected agent" : "forked child") + " uses " + own + " instead");
    agent->socket_dir = own;
  }
  if (forked_from == 0) protocol::remove_stale_sockets(agent->socket_dir);  // not on every fork

  manhole::ServerConfig config;
  config.socket_path = protocol::socket_path(agent->socket_dir, agent->owner_pid);
  config.max_connections = options.max_connections;
  config.session.idle_timeout = options.idle_timeout;
  config.session.command_timeout = options.command_timeout;
  const std::string name = process_name();
  config.session.banner = "periscope " PERISCOPE_VERSION_STRING " attached to pid " +
                          std::to_string(agent->owner_pid) + " (" + name +
                          "). Type 'help' for commands, 'quit' to leave.\n";
  config.session.hello_frame =
      protocol::encode_hello_frame(agent->owner_pid, name, PERISCOPE_VERSION_STRING);
  config.log = log_line;
  agent->server = std::make_unique<manhole::Server>(agent->io, command_registry(), std::move(config));
  if (auto err = agent->server->listen(); !err.empty()) return Status::failure(err);

  const std::string& path = agent->server->socket_path();
  copy_path(path, g_socket_to_remove);
  g_http_file_to_remove[0] = '\0';
  g_token_file_to_remove[0] = '\0';
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
  if (options.crash_report) {
    if (auto err = install_crash_handlers(options.crash_log); !err.empty()) log_line(err);
  }
  if (options.heap_profile) {  // a fork child's agent finds it on already, with the parent's picture
    if (auto err = start_heap_sampling(options.heap_rate); !err.empty()) log_line("heap profiling is off: " + err);
  } else {
    bypass_heap_interposer();
  }
  agent->profiling = make_profiling(agent->io, options.profile_timers_only);
  // A slow request's report says where its samples were, when a profile runs while it is slow.
  observe_samples(*agent->profiling, [watchdog = agent->watchdog.get()](pid_t tid, uint32_t label,
                                                                       const std::vector<uint64_t>& pcs,
                                                                       uint64_t weight) {
    watchdog->on_sample(tid, label, pcs, weight);
  });
  if (auto err = start_whole_run_profile(agent->io, *agent->profiling, options.profile, options.profile_out);
      !err.empty()) {
    log_line(err);
  }
  if (forked_from != 0 && fixed_http_port(options)) agent->http_parent = forked_from;
  else start_http(*agent);
  manhole::track_new_anonymous_fds(fds_before, manhole::open_fd_numbers());  // the io_context's own
  hand_parts_to_commands(*agent);
  start_io_thread(agent.get());
  if (options.verbose) log_line("agent " PERISCOPE_VERSION_STRING " listening on " + path);
  g_agent = agent.release();
  return Status::success();
}

// The host closed descriptors of ours (closefrom, daemonizing): the io_context is beyond repair
// and its numbers may be the host's files now. Leave it untouched, forever, and start afresh.
void restart_on_fresh_descriptors(Agent* agent, const std::string& lost) {
  {
    std::lock_guard lock(g_lifecycle);
    if (g_agent != agent) return;
    g_agent = nullptr;
  }
  log_line("agent: the host closed " + lost + "; restarting on fresh descriptors");
  take_parts_from_commands(*agent);
  abandon_profiling(*agent->profiling);
  manhole::release_all_tracked();
  set_request_table(nullptr);
  agent->thread.detach();  // this thread; it ends when we return, the old agent is leaked on purpose
  Status s = start_agent_forked_from(agent->options, 0, agent->injected);
  if (!s.ok()) log_line("agent did not restart: " + s.message());
}

// The capture state a thread of some ancestor may have been in the middle of at fork; once per
// process, before its first agent (g_capture_owner: the pid the state belongs to).
pid_t g_capture_owner = ::getpid();
void reset_capture_after_fork() {
  if (g_capture_owner == ::getpid()) return;
  StackCapture::reset_in_fork_child();
  Sampler::reset_in_fork_child();
  g_capture_owner = ::getpid();
}

// What the parent's agent left in a fork child: its descriptors (closed where still ours) and the
// capture state some parent thread may have been in the middle of.
void forget_parent_agent_in_fork_child() {
  manhole::close_fd_table_in_fork_child();
  reset_capture_after_fork();
}

// A fork child's agent before it has started (the 50 ms below): a child that forks in that time
// (a daemon's master forking its workers at once) passes it on, as if it had started.
const Agent* g_pending_agent = nullptr;  // guarded by g_lifecycle; the parent's, leaked
pid_t g_pending_forked_from = 0;

void* start_agent_of_fork_child(void* parent_agent) {
  const auto* parent = static_cast<const Agent*>(parent_agent);  // read only: its pages stay shared
  Status s = start_agent_forked_from(parent->options, g_pending_forked_from);
  for (int retry = 0; !s.ok() && retry < 2; ++retry) {
    // The child may have dropped privileges (chroot, setuid) while its agent was starting: once
    // it is done, the start finds what this uid may use.
    ::usleep(100 * 1000);
    s = start_agent_forked_from(parent->options, g_pending_forked_from);
  }
  if (!s.ok()) log_line("agent did not restart in the forked child: " + s.message());
  std::lock_guard lock(g_lifecycle);
  g_pending_agent = nullptr;
  return nullptr;
}

PERISCOPE_FORK_PATH bool start_detached(void* (*run)(void*), void* arg, void* stack, size_t stack_size) {
  sigset_t all, old;
  sigfillset(&all);
  // The thread (and the agent's) take no host signals. Not pthread_attr_setsigmask_np: it
  // allocates the attributes' extension, and a fork child's malloc costs page faults, which cost
  // more here than the two system calls it would save.
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (stack) pthread_attr_setstack(&attr, stack, stack_size);
  pthread_t thread;
  const bool started = ::pthread_create(&thread, &attr, run, arg) == 0;
  pthread_attr_destroy(&attr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return started;
}

// A fork child's agent starts a moment after the fork, so that fork() returns at once and a child
// that execs or exits soon never pays for an agent. The thread that waits runs on a stack in
// .bss (no mmap; only the pages it touches are copied); the agent starts on a thread of its own.
alignas(64) char g_fork_child_stack[128 * 1024];

void* wait_then_start_after_fork(void* parent_agent) {
  ::usleep(50 * 1000);  // first: a child that lives less (fork per connection) does nothing more
  forget_parent_agent_in_fork_child();
  if (!start_detached(start_agent_of_fork_child, parent_agent, nullptr, 0)) {
    log_line("agent did not restart in the forked child: cannot start a thread");
  }
  return nullptr;
}

PERISCOPE_FORK_PATH void start_in_background_after_fork(const Agent* parent_agent) {
  if (!start_detached(wait_then_start_after_fork, const_cast<Agent*>(parent_agent), g_fork_child_stack,
                      sizeof g_fork_child_stack)) {
    log_line("agent did not restart in the forked child: cannot start a thread");
  }
}

}  // namespace

Status start_agent(const Options& options) { return start_agent_forked_from(options, 0); }

Status start_injected_agent(const Options& options) { return start_agent_forked_from(options, 0, true); }

void eject_agent() {
  stop_agent();
  std::lock_guard lock(g_lifecycle);
  if (g_agent) return;  // started again meanwhile
  StackCapture::uninstall();
  Sampler::uninstall();
  uninstall_crash_handlers();
}

Status start_agent_forked_from(const Options& options, pid_t forked_from, bool injected) {
  try {
    static const bool facts_wired =
        (live_parts().facts = facts_of_running_agent, live_parts().eject = eject_from_command, true);
    (void)facts_wired;
    command_registry();  // built-ins exist before the first session
    std::lock_guard lock(g_lifecycle);
    return start_locked(options, forked_from, injected);
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
      observe_samples(*agent->profiling, nullptr);
      agent->watchdog->stop();
      shut_down_profiling(*agent->profiling);
      if (agent->http) agent->http->stop();
      agent->server->stop();
      agent->work.reset();
      agent->io.stop();
    });
    if (agent->thread.get_id() == std::this_thread::get_id()) {
      take_parts_from_commands(*agent);  // no command runs on this thread after this one
      agent->thread.detach();  // stopped from a command handler: the thread ends by itself
      return;                  // and the agent is leaked rather than freed under its own feet
    }
    agent->thread.join();
    take_parts_from_commands(*agent);
    if (g_socket_owner == ::getpid()) {
      g_socket_to_remove[0] = '\0';
      if (g_http_file_to_remove[0]) ::unlink(g_http_file_to_remove);
      if (g_token_file_to_remove[0]) ::unlink(g_token_file_to_remove);
      g_http_file_to_remove[0] = '\0';
      g_token_file_to_remove[0] = '\0';
    }
    manhole::drop_answers_for(agent->io);
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

std::string agent_http_endpoint() {
  std::lock_guard lock(g_lifecycle);
  return g_agent ? g_agent->http_endpoint : std::string();
}

namespace {

std::optional<AgentFacts> facts_of_running_agent() {
  std::lock_guard lock(g_lifecycle);
  if (!g_agent) return std::nullopt;
  AgentFacts f;
  f.version = PERISCOPE_VERSION_STRING;
  f.socket = g_agent->server->socket_path();
  f.http = g_agent->http_endpoint;
  f.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_agent->started).count();
  f.stack_signal = StackCapture::signal_number();
  f.profile_signal = Sampler::signal_number();
  f.options = g_agent->options;
  f.socket_dir = g_agent->socket_dir;
  f.injected = g_agent->injected;
  return f;
}

// The `eject` command runs on the agent's thread, which stop_agent joins: a thread of its own
// does it, once the reply has gone out.
void eject_from_command() {
  manhole::start_quiet_thread([] {
    ::usleep(100 * 1000);
    eject_agent();
  }).detach();
}

}  // namespace

// The child has one thread (this one) and the parent's agent objects, whose io thread is gone:
// never touch them. Only what the host's own code in the child could run into happens here; the
// rest (closing the agent's descriptors, a fresh agent) happens on a thread of the child's own,
// so that fork() returns at once and copies as few pages as possible.
PERISCOPE_FORK_PATH void restart_in_fork_child() {
  if (request_table()) set_request_table(nullptr);  // the child gets a table of its own if its agent restarts
  reset_cached_tid_in_fork_child();
  reset_crash_report_in_fork_child();
  reset_if_held_in_fork_child(g_lifecycle);
  reset_if_held_in_fork_child(command_registry().mutex());
  reset_if_held_in_fork_child(variable_registry().mutex());
  const Agent* parent_agent = g_agent ? g_agent : g_pending_agent;
  if (!parent_agent) return;
  g_agent = nullptr;
  g_pending_agent = parent_agent;
  g_pending_forked_from = ::getppid();  // now, while the parent surely lives
  if (!parent_agent->options.restart_after_fork) {
    g_pending_agent = nullptr;
    manhole::close_fd_table_in_fork_child();  // capture state is reset if the host starts an agent here
    return;
  }
  start_in_background_after_fork(parent_agent);
}

}  // namespace periscope::agent
