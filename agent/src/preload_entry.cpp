// The LD_PRELOAD entry point: when libperiscope.so was preloaded into an unmodified binary, start
// the agent from the environment. A host that links us calls periscope::start() itself, so
// that it can pass its own options.
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string_view>

#include "agent/src/agent.h"
#include "agent/src/logging.h"

namespace periscope::agent {

namespace {

// True when our own file name appears in LD_PRELOAD (entries split by ':' or ' ').
bool loaded_by_ld_preload() {
  const char* preload = std::getenv("LD_PRELOAD");
  Dl_info self{};
  if (!preload || !::dladdr(reinterpret_cast<void*>(&loaded_by_ld_preload), &self) || !self.dli_fname) {
    return false;
  }
  const char* slash = std::strrchr(self.dli_fname, '/');
  std::string_view own_name = slash ? slash + 1 : self.dli_fname;
  std::string_view list = preload;
  while (!list.empty()) {
    size_t end = list.find_first_of(": ");
    std::string_view entry = list.substr(0, end);
    size_t entry_slash = entry.rfind('/');
    if (entry_slash != std::string_view::npos) entry = entry.substr(entry_slash + 1);
    if (entry == own_name) return true;
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return false;
}

__attribute__((constructor)) void start_when_preloaded() {
  if (!loaded_by_ld_preload()) return;
  Options options = Options::from_env();
  if (!options.enabled) return;
  Status status = start_agent(options);
  if (!status.ok()) log_line("agent not started: " + status.message());
}

}  // namespace
}  // namespace periscope::agent
