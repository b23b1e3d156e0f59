#include "viewer/profile_fetch.h"

#include "profiler/profile_symbolize.h"
#include "viewer/cli_errors.h"

namespace periscope::viewer {

ProfileFetcher::ProfileFetcher(pid_t pid) : symbolizer_(std::make_unique<Symbolizer>(pid)) {
  if (!symbolizer_->error().empty()) symbolizer_.reset();
}

nlohmann::json ProfileFetcher::fetch_reply(Client& client) {
  if (!symbolizer_) return client.call_checked({"profile", "dump"})["data"];
  return client.call_checked({"profile", "dump", "--raw"})["data"];
}

Profile ProfileFetcher::name(const nlohmann::json& reply) {
  try {
    if (!symbolizer_) return profile_from_json(reply);
    return profile_from_raw_json(reply, *symbolizer_);
  } catch (const nlohmann::json::exception& e) {
    throw CliError(kExitConnection, std::string("malformed profile from the agent: ") + e.what());
  }
}

Profile ProfileFetcher::fetch(Client& client) { return name(fetch_reply(client)); }

}  // namespace periscope::viewer
