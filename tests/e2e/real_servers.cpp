#include "tests/e2e/real_servers.h"

#include <map>
#include <stdexcept>
#include <unistd.h>

#include "tests/e2e/server_process.h"

namespace periscope::test {

namespace {

struct Known {
  std::unique_ptr<RealServer> (*start)(const SocketDir&);
  std::vector<std::string> programs;  // what must be installed; the package is named after the first
  std::string package;
};

const std::map<std::string, Known>& known() {
  static const std::map<std::string, Known> servers{
      {"redis", {start_redis, {"/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/bin/redis-benchmark"},
                 "redis-server"}},
      {"nginx", {start_nginx, {"/usr/sbin/nginx"}, "nginx-light"}},
      {"postgres", {start_postgres,
                    {"/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/bin/initdb",
                     "/usr/lib/postgresql/15/bin/pgbench", "/usr/lib/postgresql/15/bin/pg_isready", "/usr/bin/setpriv"},
                    "postgresql"}},
      {"memcached", {start_memcached, {"/usr/bin/memcached"}, "memcached"}},
  };
  return servers;
}

}  // namespace

std::string RealServer::stop() {
  if (!stopped_) {
    stopped_ = true;
    stop_result_ = shut_down();
    if (!stop_result_.empty()) stop_result_ += log_tail();
  }
  return stop_result_;
}

pid_t launch_daemon(const std::vector<std::string>& argv, const Env& env, const std::string& pidfile,
                    const std::string& what, const std::function<std::string()>& log_tail) {
  Process launcher(argv, env);
  auto launched = launcher.wait(20s);
  if (launched != 0) {
    throw std::runtime_error(what + " did not daemonize: " + describe_exit(launched) + "; " + launcher.stderr_text() +
                             log_tail());
  }
  if (!wait_until([&] { return read_pidfile(pidfile).has_value(); }, 20s)) {
    throw std::runtime_error(what + " wrote no pidfile" + log_tail());
  }
  return *read_pidfile(pidfile);
}

std::string shutdown_verdict(const std::string& role, pid_t pid, std::optional<int> status, const std::string& how,
                             const std::string& leftover) {
  if (!status) return "the " + role + " is still running " + how;
  if (*status != 0) return "the " + role + " (pid " + std::to_string(pid) + ") ended with " + describe_exit(status);
  if (file_exists(leftover)) return "the " + role + " exited but left " + leftover + " behind";
  return {};
}

std::vector<std::string> real_server_names() { return {"redis", "nginx", "postgres", "memcached"}; }

std::string why_real_server_cannot_run(const std::string& name) {
  // Operators start these as root: nginx and memcached drop privileges themselves, postgres is
  // handed to its own user, and comparing with ptrace needs the right to trace them.
  if (::geteuid() != 0) return "real servers are started as root, as their operators do; run the tests as root";
  for (const auto& program : known().at(name).programs) {
    if (::access(program.c_str(), X_OK) != 0) {
      return program + " is not installed (scripts/setup-deps.sh installs " + known().at(name).package + ")";
    }
  }
  if (::access("/usr/bin/nm", X_OK) != 0) return "nm is not installed (binutils, from build-essential)";
  // Seen in the ThreadSanitizer job (see scripts/test-sanitizers.sh on deferred signals): in these
  // uninstrumented servers most stack captures timed out, profiles stayed empty, nginx's master
  // never acted on SIGQUIT, and memcached exited 66 once it could no longer write TSan's log as
  // user nobody. No assertion here could hold; the plain and ASan builds run them.
  if (agent_preload().find("libtsan") != std::string::npos) {
    return "real servers do not run under ThreadSanitizer's runtime (deferred signals); the plain and ASan builds "
           "run them";
  }
  // Seen with Debian's postgres 15 and gcc 12's libasan and libtsan: the postmaster hangs before
  // it logs anything, in bindtextdomain (set_pglocale_pgservice), with the runtime preloaded
  // alone, no agent involved.
  if (name == "postgres" && agent_preload() != agent_path()) {
    return "postgres hangs at startup with a sanitizer runtime preloaded (agent or not); it runs in the plain build";
  }
  return {};
}

namespace {
bool g_preload_agent = true;  // what agent_env() gives the server being started
}  // namespace

std::unique_ptr<RealServer> start_real_server(const std::string& name, const SocketDir& sockets, bool preload_agent) {
  become_subreaper();  // daemons fork away from their launcher; we still want their exit status
  g_preload_agent = preload_agent;
  return known().at(name).start(sockets);
}

Env agent_env(const SocketDir& sockets) {
  return {{"LD_PRELOAD", g_preload_agent ? agent_preload() : std::string()}, {"PERISCOPE_SOCKET_DIR", sockets.path()}};
}

}  // namespace periscope::test
