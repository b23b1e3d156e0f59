// The entry point `periscope inject` calls, through ptrace, on a thread of a running process it
// has just loaded libperiscope.so into (the constructor does nothing there: no LD_PRELOAD names
// us). The settings come as text, "PERISCOPE_NAME=value" lines, since the host's environment
// cannot change; a setting not given is read from the environment as usual.
//
// Runs on a host thread the injector chose at a safe point, with every signal but the faults
// blocked; it returns as soon as the agent listens (its work then happens on its own thread).
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/src/agent.h"
#include "agent/src/config.h"
#include "agent/src/logging.h"

namespace periscope::agent {
namespace {

// The value of `name` in "NAME=value\n..." lines, or null. Points into `settings`' copy.
const char* find_setting(const std::string& settings, std::string& value, const char* name) {
  std::string_view rest = settings;
  const std::string_view wanted = name;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    if (line.size() > wanted.size() && line.substr(0, wanted.size()) == wanted && line[wanted.size()] == '=') {
      value = std::string(line.substr(wanted.size() + 1));
      return value.c_str();
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return nullptr;
}

void write_error(char* error, size_t size, const std::string& message) {
  if (!error || size == 0) return;
  const size_t n = std::min(size - 1, message.size());
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}

}  // namespace
}  // namespace periscope::agent

// 0: the agent listens now; 1: an agent was already running (nothing changed); 2: it did not
// start, `error` says why. No exception leaves.
extern "C" __attribute__((visibility("default"))) int periscope_inject_start(const char* settings, char* error,
                                                                             size_t error_size) {
  using namespace periscope::agent;
  try {
    if (agent_running()) return 1;
    const std::string text = settings ? settings : "";
    std::string value;
    periscope::Options options = options_from([&](const char* name) -> const char* {
      if (const char* given = find_setting(text, value, name)) return given;
      return std::getenv(name);
    });
    options.enabled = true;  // an explicit inject is the user's wish, whatever PERISCOPE_DISABLE says
    periscope::Status s = start_injected_agent(options);
    if (s.ok()) return 0;
    write_error(error, error_size, s.message());
    log_line("injected agent not started: " + s.message());
    return 2;
  } catch (...) {
    write_error(error, error_size, "the agent failed to start");
    return 2;
  }
}
