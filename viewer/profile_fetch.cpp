#include "viewer/profile_fetch.h"

#include "profiler/profile_symbolize.h"
#include "viewer/cli_errors.h"

namespace periscope::viewer {

ProfileFetcher::ProfileFetcher(pid_t pid) : symbolizer_(std::make_unique<Symbolizer>(pid)) {
  if (!symbolizer_->error().empty()) symbolizer_.reset();
}

Profile ProfileFetcher::fetch(Client& client) {
  try {
    if (!symbolizer_) return profile_from_json(client.call_checked({"profile", "dump"})["data"]);
    return profile_from_raw_json(client.call_checked({"profile", "dump", "--raw"})["data"], *symbolizer_);
  } catch (const nlohmann::json::exception& e) {
    throw CliError(kExitConnection, std::string("malformed profile from the agent: ") + e.what());
  }
}

}  // namespace periscope::viewer
