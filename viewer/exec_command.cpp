// `periscope exec PID COMMAND [ARGS...]`: one command, its reply on stdout.
#include <cstdio>

#include "protocol/protocol.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

int run_exec(pid_t pid, const std::vector<std::string>& words, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  nlohmann::json frame = client.call(words);
  bool ok = frame.value("ok", false);
  if (options.json) {
    std::printf("%s\n", protocol::dump_json(ok ? frame["data"] : frame, 2).c_str());
  } else if (ok) {
    print_untrusted(frame.value("text", ""));
  }
  if (!ok) {
    print_error(frame.value("error", "command failed"));
    return kExitCommandFailed;
  }
  return kExitOk;
}

}  // namespace periscope::viewer
