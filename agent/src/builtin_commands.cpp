#include "agent/src/builtin_commands.h"

#include <cstdio>
#include <unistd.h>

#include "agent/src/agent.h"
#include "agent/src/metrics/metrics.h"
#include "agent/src/profiling.h"
#include "agent/src/slow_commands.h"
#include "agent/src/stacks_command.h"
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

Reply info(const Args&) {
  auto proc = read_process_info(::getpid());
  if (!proc) return Reply::failure("info: cannot read /proc/self");
  nlohmann::json agent = agent_status();
  nlohmann::json data{{"pid", proc->pid},
                      {"name", proc->name},
                      {"exe", proc->exe},
                      {"cmdline", proc->cmdline},
                      {"uid", proc->uid},
                      {"uptime_s", proc->uptime_seconds},
                      {"cpu_s", proc->cpu_seconds},
                      {"threads", proc->threads},
                      {"agent", agent}};
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
  if (!agent.is_null()) {
    rows.push_back({"agent", "periscope " + agent["version"].get<std::string>() + ", up " +
                                 format_duration(agent["agent_uptime_s"].get<double>())});
    rows.push_back({"socket", agent["socket"].get<std::string>()});
    rows.push_back({"http", agent["http"].is_string() ? "http://" + agent["http"].get<std::string>() + "/" : "off"});
    rows.push_back({"sessions", std::to_string(agent["sessions_active"].get<int>()) + " active, " +
                                    std::to_string(agent["connections_accepted"].get<uint64_t>()) + " accepted, " +
                                    std::to_string(agent["connections_refused_uid"].get<uint64_t>() +
                                                   agent["connections_refused_busy"].get<uint64_t>()) +
                                    " refused"});
    for (const auto& [key, value] : agent["config"].items()) {
      rows.push_back({"config." + key, value.is_string() ? value.get<std::string>() : value.dump()});
    }
  }
  return Reply::success(protocol::format_table(rows), data);
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

std::string add_builtin_commands(manhole::CommandRegistry& registry) {
  if (auto err = registry.add({"info", "", "pid, executable, command line, uptime, agent version and config", info});
      !err.empty()) {
    return err;
  }
  if (auto err = registry.add({"threads", "", "every thread: tid, name, state, CPU time", threads}); !err.empty()) {
    return err;
  }
  if (auto err = add_stacks_command(registry); !err.empty()) return err;
  if (auto err = add_slow_commands(registry); !err.empty()) return err;
  if (auto err = add_metrics_command(registry); !err.empty()) return err;
  return add_profile_command(registry);
}

}  // namespace periscope::agent
