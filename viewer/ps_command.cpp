// `periscope ps`: every live process with an agent, like `gops`. Reads /proc only; connects to
// nobody, so it is fast and works for processes we may not attach to.
#include <cstdio>
#include <pwd.h>

#include <nlohmann/json.hpp>

#include "manhole/protocol.h"
#include "manhole/text_table.h"
#include "profiler/process_info.h"
#include "viewer/commands.h"
#include "viewer/discovery.h"

namespace periscope::viewer {

namespace {

std::string user_name(uid_t uid) {
  if (passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

}  // namespace

int run_ps(const CommonOptions& options) {
  nlohmann::json list = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"PID", "NAME", "USER", "UPTIME", "SOCKET"}};
  for (const auto& agent : find_agents()) {
    auto info = read_process_info(agent.pid);
    if (!info) continue;  // exited since we looked
    list.push_back({{"pid", agent.pid},
                    {"name", info->name},
                    {"uid", info->uid},
                    {"user", user_name(info->uid)},
                    {"uptime_s", info->uptime_seconds},
                    {"socket", agent.socket_path}});
    rows.push_back({std::to_string(agent.pid), info->name, user_name(info->uid),
                    format_duration(info->uptime_seconds), agent.socket_path});
  }
  if (options.json) {
    std::printf("%s\n", manhole::dump_json(list, 2).c_str());
  } else if (list.empty()) {
    std::printf("no processes with a periscope agent found\n");
  } else {
    std::fputs(manhole::format_table(rows).c_str(), stdout);
  }
  return 0;
}

}  // namespace periscope::viewer
