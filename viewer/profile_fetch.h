// The running profile of a process, named by the viewer: the agent sends addresses only
// (`profile dump --raw`), so the host's memory never holds the debug information. When the viewer
// cannot read the process's modules (another mount namespace, no permission), the agent names
// them itself. One fetcher keeps its symbolizer's cache across calls (`top` refreshes).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "profiler/profile.h"
#include "profiler/symbolizer.h"
#include "viewer/client.h"

namespace periscope::viewer {

class ProfileFetcher {
 public:
  explicit ProfileFetcher(pid_t pid);
  // Throws CliError when the agent refuses (the message is the agent's) or replies malformed.
  Profile fetch(Client& client);
  // The same in two steps: the agent's reply, kept (a record's checkpoint), then named.
  nlohmann::json fetch_reply(Client& client);
  Profile name(const nlohmann::json& reply);

 private:
  std::unique_ptr<Symbolizer> symbolizer_;  // null: the agent symbolizes
};

}  // namespace periscope::viewer
