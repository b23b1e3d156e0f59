// `periscope ps`: every live process with an agent, like `gops`. Reads /proc and the socket
// directory only; connects to nobody, so it is fast and works for processes we may not attach to.
// --prometheus-sd turns the agents that serve HTTP into a Prometheus file_sd_configs target list.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <pwd.h>
#include <set>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "protocol/protocol.h"
#include "protocol/socket_location.h"
#include "protocol/text_table.h"
#include "profiler/process_info.h"
#include "profiler/proc_reader.h"
#include "viewer/cli_errors.h"
#include "viewer/output_file.h"
#include "viewer/commands.h"
#include "viewer/discovery.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

std::string user_name(uid_t uid) {
  if (passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

// The agent's HTTP endpoint from the file beside its socket; empty when it has none (or the
// socket directory is not ours to read).
std::string http_endpoint(const std::string& socket_path) {
  auto text = proc::read_file(protocol::http_address_file(socket_path), 256);
  if (!text) return {};
  auto end = text->find('\n');
  return text->substr(0, end);
}

int print_prometheus_sd(const nlohmann::json& list, const PsOptions& ps) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& agent : list) {
    if (!agent["http"].is_string()) continue;
    groups.push_back({{"targets", {agent["http"]}},
                      {"labels", {{"job", ps.job}, {"process", agent["name"]}}}});
  }
  std::string text = protocol::dump_json(groups, 2) + "\n";
  if (ps.output.empty()) std::fputs(text.c_str(), stdout);
  else write_atomically(ps.output, text);
  if (groups.empty()) std::fprintf(stderr, "periscope: no agent serves HTTP (start them with PERISCOPE_HTTP)\n");
  return kExitOk;
}

// Processes that dropped privileges or chrooted could not remove their socket and address files
// when they exited: whoever looks next removes the files of processes that are gone.
void remove_stale_files(const std::vector<AgentEndpoint>& agents) {
  std::set<std::string> dirs{protocol::default_socket_dir()};
  for (const auto& a : agents) dirs.insert(a.socket_path.substr(0, a.socket_path.rfind('/')));
  for (const auto& dir : dirs) protocol::remove_stale_sockets(dir);
}

}  // namespace

int run_ps(const PsOptions& ps, const CommonOptions& options) {
  nlohmann::json list = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"PID", "NAME", "USER", "UPTIME", "HTTP", "SOCKET", "TITLE"}};
  const auto agents = find_agents();
  remove_stale_files(agents);
  for (const auto& agent : agents) {
    auto info = read_process_info(agent.pid);
    if (!info) continue;  // exited since we looked
    std::string http = http_endpoint(agent.socket_path);
    list.push_back({{"pid", agent.pid},
                    {"name", info->name},
                    {"uid", info->uid},
                    {"user", user_name(info->uid)},
                    {"uptime_s", info->uptime_seconds},
                    {"socket", agent.socket_path},
                    {"title", info->title},
                    {"http", http.empty() ? nlohmann::json(nullptr) : nlohmann::json(http)}});
    rows.push_back({std::to_string(agent.pid), info->name, user_name(info->uid),
                    format_duration(info->uptime_seconds), http.empty() ? "-" : http, agent.socket_path,
                    info->title.size() > 60 ? info->title.substr(0, 57) + "..." : info->title});
  }
  if (ps.prometheus_sd) return print_prometheus_sd(list, ps);
  if (!ps.output.empty()) throw CliError(kExitUsage, "-o/--output goes with --prometheus-sd");
  if (options.json) {
    std::printf("%s\n", protocol::dump_json(list, 2).c_str());
  } else if (list.empty()) {
    std::printf("no processes with a periscope agent found\n");
  } else {
    print_untrusted(protocol::format_table(rows));
  }
  return kExitOk;
}

}  // namespace periscope::viewer
