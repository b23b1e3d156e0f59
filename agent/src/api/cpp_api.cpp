// The public C++ API: thin, exception-proof wrappers over the agent and its registries.
#include "agent/src/agent.h"
#include "agent/src/registries.h"
#include "agent/src/metrics/metrics.h"
#include "periscope/periscope.h"

namespace periscope {

namespace {

template <typename F>
Status guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::failure(std::string(what) + ": " + e.what());
  } catch (...) {
    return Status::failure(std::string(what) + ": unknown error");
  }
}

Status from_error(const std::string& error) { return error.empty() ? Status::success() : Status::failure(error); }

}  // namespace

Status start(const Options& options) { return agent::start_agent(options); }

void stop() { agent::stop_agent(); }

bool running() { return agent::agent_running(); }

std::string socket_path() {
  try {
    return agent::agent_socket_path();
  } catch (...) {
    return {};
  }
}

std::string http_endpoint() {
  try {
    return agent::agent_http_endpoint();
  } catch (...) {
    return {};
  }
}

std::shared_ptr<prometheus::Registry> registry() { return agent::host_registry(); }

Status add_command(const std::string& name, const std::string& usage, const std::string& help,
                   CommandHandler handler) {
  return guarded("add_command", [&] {
    if (!handler) return Status::failure("add_command: '" + name + "' has no handler");
    manhole::Command command{name, usage, help,
                             [handler = std::move(handler)](const manhole::Args& args) {
                               std::string text = handler(args);
                               if (!text.empty() && text.back() != '\n') text += '\n';  // a line, for a shell
                               return protocol::Reply::success(std::move(text));
                             }};
    command.changes_state = true;  // we can't tell what an application's command does: POST only over HTTP
    command.off_thread = true;     // nor how long it takes: it must not hold the agent
    return from_error(agent::command_registry().add(std::move(command)));
  });
}

Status add_variable(const std::string& name, std::function<std::string()> getter,
                    std::function<void(const std::string&)> setter, const std::string& help) {
  return guarded("add_variable", [&] {
    return from_error(agent::variable_registry().add({name, help, std::move(getter), std::move(setter)}));
  });
}

}  // namespace periscope
