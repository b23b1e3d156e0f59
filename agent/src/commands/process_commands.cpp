// info and threads: the process and the agent at a glance.
#include <cstdio>
#include <unistd.h>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/config.h"
#include "manhole/server.h"
#include "protocol/command_line.h"
#include "protocol/text_table.h"
#include "profiler/proc_reader.h"
#include "profiler/process_info.h"
#include "profiler/thread_list.h"

namespace periscope::agent {

using manhole::Args;
using protocol::Reply;

namespace {

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

nlohmann::json agent_json(const AgentFacts& agent, const manhole::ServerCounters* sessions);

Reply info(const LiveParts& parts) {
  auto proc = read_process_info(::getpid());
  if (!proc) return Reply::failure("info: cannot read /proc/self");
  std::optional<AgentFacts> agent = parts.facts ? parts.facts() : std::nullopt;
  const manhole::ServerCounters* sessions = parts.sessions.load();
  nlohmann::json data{{"pid", proc->pid},
                      {"name", proc->name},
                      {"exe", proc->exe},
                      {"cmdline", proc->cmdline},
                      {"uid", proc->uid},
                      {"uptime_s", proc->uptime_seconds},
                      {"cpu_s", proc->cpu_seconds},
                      {"threads", proc->threads},
                      {"agent", agent ? agent_json(*agent, sessions) : nlohmann::json(nullptr)}};
  std::string cmdline;
  for (const auto& word : proc->cmdline) cmdline += (cmdline.empty() ? "" : " ") + protocol::quote_word(word);
  std::vector<std::vector<std::string>> rows{
      {"pid", std::to_string(proc->pid)},
      {"name", proc->name},
      {"exe", proc->exe},
      {"cmdline", cmdline},
      {"uid", std::to_string(proc->uid)},
      {"uptime", format_duration(proc->uptime_seconds)},
      {"cpu", fixed(proc->cpu_seconds, 2) + " s"},
      {"threads", std::to_string(proc->threads)},
  };
  if (agent) {
    rows.push_back({"agent", "periscope " + agent->version + ", up " + format_duration(agent->uptime_s) +
                                 (agent->injected ? " (injected)" : "")});
    rows.push_back({"socket", agent->socket});
    rows.push_back({"http", agent->http.empty() ? "off" : "http://" + agent->http + "/"});
    if (sessions) {
      rows.push_back({"sessions", std::to_string(sessions->active.load()) + " active, " +
                                      std::to_string(sessions->accepted.load()) + " accepted, " +
                                      std::to_string(sessions->refused_uid.load() + sessions->refused_busy.load()) +
                                      " refused"});
    }
    const nlohmann::json config = describe_options(agent->options, agent->socket_dir);
    for (const auto& [key, value] : config.items()) {
      rows.push_back({"config." + key, value.is_string() ? value.get<std::string>() : value.dump()});
    }
  }
  return Reply::success(protocol::format_table(rows), data);
}

nlohmann::json agent_json(const AgentFacts& agent, const manhole::ServerCounters* sessions) {
  nlohmann::json out{{"version", agent.version},
                     {"socket", agent.socket},
                     {"http", agent.http.empty() ? nlohmann::json(nullptr) : nlohmann::json(agent.http)},
                     {"agent_uptime_s", agent.uptime_s},
                     {"stack_signal", agent.stack_signal},
                     {"profile_signal", agent.profile_signal},
                     {"injected", agent.injected},
                     {"config", describe_options(agent.options, agent.socket_dir)}};
  if (sessions) {
    out["sessions_active"] = sessions->active.load();
    out["connections_accepted"] = sessions->accepted.load();
    out["connections_refused_uid"] = sessions->refused_uid.load();
    out["connections_refused_busy"] = sessions->refused_busy.load();
  }
  return out;
}

Reply threads(const Args&) {
  auto list = list_threads(::getpid());
  nlohmann::json data = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"TID", "NAME", "STATE", "CPU(s)"}};
  for (const auto& t : list) {
    data.push_back({{"tid", t.tid}, {"name", t.name}, {"state", proc::state_name(t.state)}, {"cpu_s", t.cpu_seconds}});
    rows.push_back({std::to_string(t.tid), t.name, proc::state_name(t.state), fixed(t.cpu_seconds, 2)});
  }
  return Reply::success(protocol::format_table(rows) + std::to_string(list.size()) + " threads\n",
                        {{"threads", data}});
}

}  // namespace

std::string add_process_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  if (auto err = registry.add({"info", "", "pid, executable, command line, uptime, agent version and config",
                               [&parts](const Args&) { return info(parts); }});
      !err.empty()) {
    return err;
  }
  if (auto err = registry.add({"threads", "", "every thread: tid, name, state, CPU time", threads}); !err.empty()) {
    return err;
  }
  // Answers first; the agent stops a moment later, so that this reply still reaches the client.
  return registry.add({"eject", "",
                       "stop the agent: threads, sockets, signal handlers and timers go; the code stays "
                       "mapped (periscope inject starts it again)",
                       [&parts](const Args&) {
                         if (!parts.eject) return Reply::failure("eject: not available");
                         parts.eject();
                         return Reply::success("ejecting: the agent stops now", nlohmann::json{{"ejecting", true}});
                       }});
}

}  // namespace periscope::agent
