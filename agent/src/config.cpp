#include "agent/src/config.h"

#include <cstdlib>
#include <cstring>

#include "agent/src/logging.h"

namespace periscope {

namespace {

// The PERISCOPE_* settings, from the environment or from what `periscope inject` passed.
struct Settings {
  const agent::SettingLookup& lookup;

  const char* env(const char* name) const {
    const char* v = lookup(name);
    return (v && *v) ? v : nullptr;
  }
  bool env_flag(const char* name, bool fallback) const;
  long env_int(const char* name, long fallback, long min, long max) const;
};

bool Settings::env_flag(const char* name, bool fallback) const {
  const char* v = env(name);
  if (!v) return fallback;
  if (!std::strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) return true;
  if (!std::strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) return false;
  agent::log_line(std::string("ignoring ") + name + "='" + v + "': expected on/off or 1/0");
  return fallback;
}

long Settings::env_int(const char* name, long fallback, long min, long max) const {
  const char* v = env(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
    agent::log_line(std::string("ignoring ") + name + "='" + v + "': expected an integer in [" +
                    std::to_string(min) + ", " + std::to_string(max) + "]");
    return fallback;
  }
  return n;
}

}  // namespace

Options Options::from_env() { return agent::options_from(std::getenv); }

namespace agent {

Options options_from(const SettingLookup& lookup) {
  const Settings settings{lookup};
  Options o;
  try {
    o.enabled = !settings.env_flag("PERISCOPE_DISABLE", false);
    if (const char* d = settings.env("PERISCOPE_SOCKET_DIR")) o.socket_dir = d;
    o.max_connections = static_cast<int>(settings.env_int("PERISCOPE_MAX_CONNECTIONS", o.max_connections, 1, 1000));
    o.idle_timeout = std::chrono::seconds(settings.env_int("PERISCOPE_IDLE_TIMEOUT", o.idle_timeout.count(), 1, 86400 * 7));
    o.restart_after_fork = settings.env_flag("PERISCOPE_FORK", o.restart_after_fork);
    o.verbose = settings.env_flag("PERISCOPE_VERBOSE", o.verbose);
    o.stack_signal = static_cast<int>(settings.env_int("PERISCOPE_STACK_SIGNAL", o.stack_signal, 0, 64));
    o.stack_timeout =
        std::chrono::milliseconds(settings.env_int("PERISCOPE_STACK_TIMEOUT_MS", o.stack_timeout.count(), 1, 60000));
    o.command_timeout =
        std::chrono::milliseconds(settings.env_int("PERISCOPE_COMMAND_TIMEOUT_MS", o.command_timeout.count(), 1, 600000));
    if (const char* v = settings.env("PERISCOPE_PROFILE")) o.profile = v;
    if (const char* v = settings.env("PERISCOPE_PROFILE_OUT")) o.profile_out = v;
    if (const char* clock = settings.env("PERISCOPE_PROFILE_CLOCK")) {
      if (std::strcmp(clock, "timer") == 0) o.profile_timers_only = true;
      else if (std::strcmp(clock, "perf") != 0) agent::log_line(std::string("ignoring PERISCOPE_PROFILE_CLOCK='") + clock + "': expected perf or timer");
    }
    o.profile_signal = static_cast<int>(settings.env_int("PERISCOPE_PROFILE_SIGNAL", o.profile_signal, 0, 64));
    o.slow_threshold =
        std::chrono::milliseconds(settings.env_int("PERISCOPE_SLOW_MS", o.slow_threshold.count(), 0, 86400000));
    o.slow_interval =
        std::chrono::milliseconds(settings.env_int("PERISCOPE_SLOW_INTERVAL_MS", o.slow_interval.count(), 10, 3600000));
    o.slow_keep = static_cast<int>(settings.env_int("PERISCOPE_SLOW_KEEP", o.slow_keep, 1, 100000));
    if (const char* log = settings.env("PERISCOPE_SLOW_LOG")) o.slow_log = log;
    o.slow_stderr = settings.env_flag("PERISCOPE_SLOW_STDERR", o.slow_stderr);
    o.max_inflight = static_cast<int>(settings.env_int("PERISCOPE_SLOW_MAX_INFLIGHT", o.max_inflight, 16, 1 << 22));
    o.max_request_names = static_cast<int>(settings.env_int("PERISCOPE_SLOW_MAX_NAMES", o.max_request_names, 1, 10000));
    if (const char* http = settings.env("PERISCOPE_HTTP")) o.http = http;
    o.http_max_connections =
        static_cast<int>(settings.env_int("PERISCOPE_HTTP_MAX_CONNECTIONS", o.http_max_connections, 1, 1000));
    o.http_timeout = std::chrono::milliseconds(settings.env_int("PERISCOPE_HTTP_TIMEOUT_MS", o.http_timeout.count(), 10, 600000));
    if (const char* file = settings.env("PERISCOPE_HTTP_TOKEN_FILE")) o.http_token_file = file;
    if (const char* hosts = settings.env("PERISCOPE_HTTP_HOSTS")) o.http_hosts = hosts;
    o.crash_report = settings.env_flag("PERISCOPE_CRASH", o.crash_report);
    if (const char* log = settings.env("PERISCOPE_CRASH_LOG")) o.crash_log = log;
    o.heap_profile = settings.env_flag("PERISCOPE_HEAP", o.heap_profile);
    o.heap_rate = static_cast<uint64_t>(
        settings.env_int("PERISCOPE_HEAP_RATE", static_cast<long>(o.heap_rate), 1, 1L << 40));
  } catch (...) {
  }
  return o;
}

nlohmann::json describe_options(const Options& o, const std::string& socket_dir) {
  return {{"socket_dir", socket_dir},
          {"max_connections", o.max_connections},
          {"idle_timeout_s", o.idle_timeout.count()},
          {"fork", o.restart_after_fork ? "on" : "off"},
          {"verbose", o.verbose},
          {"stack_timeout_ms", o.stack_timeout.count()},
          {"command_timeout_ms", o.command_timeout.count()},
          {"profile", o.profile},
          {"profile_clock", o.profile_timers_only ? "timer" : "perf"},
          {"profile_out", o.profile_out},
          {"slow_ms", o.slow_threshold.count()},
          {"slow_interval_ms", o.slow_interval.count()},
          {"slow_keep", o.slow_keep},
          {"slow_log", o.slow_log},
          {"slow_stderr", o.slow_stderr},
          {"max_inflight", o.max_inflight},
          {"max_request_names", o.max_request_names},
          {"http", o.http},
          {"http_max_connections", o.http_max_connections},
          {"http_timeout_ms", o.http_timeout.count()},
          {"http_token_file", o.http_token_file},
          {"http_hosts", o.http_hosts},
          {"crash", o.crash_report ? "on" : "off"},
          {"crash_log", o.crash_log},
          {"heap", o.heap_profile ? "on" : "off"},
          {"heap_rate", o.heap_rate}};
}

}  // namespace agent
}  // namespace periscope
