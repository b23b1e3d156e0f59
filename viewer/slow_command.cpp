// `periscope slow PID` (recent slow-request reports; --follow streams new ones) and
// `periscope inflight PID` (requests running now), through the agent's watchdog commands.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "protocol/protocol.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

void print_frame(const nlohmann::json& frame, bool json) {
  if (json) std::printf("%s\n", protocol::dump_json(frame["data"], 2).c_str());
  else print_untrusted(frame.value("text", ""));
  std::fflush(stdout);
}

}  // namespace

int run_slow(pid_t pid, bool follow, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  auto frame = client.call_checked({"slow"});
  // Requests caught but not yet listed (their stacks are being symbolized, which can take a
  // while the first time): wait for them, so that a request slow a moment ago is in the answer.
  const auto until = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(options.timeout, std::chrono::seconds(5));
  while (!follow && frame["data"].value("symbolizing", 0) > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    frame = client.call_checked({"slow"});
  }
  if (!follow) {
    print_frame(frame, options.json);
    return kExitOk;
  }
  // Follow: what is there now, then every new report as it appears.
  uint64_t since = 0;
  for (;;) {
    const auto& reports = frame["data"]["reports"];
    if (!reports.empty()) {
      if (options.json) {
        for (const auto& r : reports) std::printf("%s\n", protocol::dump_json(r).c_str());
        std::fflush(stdout);
      } else {
        print_frame(frame, false);
      }
    }
    since = frame["data"].value("next_seq", since + 1) - 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    frame = client.call_checked({"slow", std::to_string(since)});
  }
}

int run_inflight(pid_t pid, size_t limit, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  print_frame(client.call_checked({"inflight", std::to_string(limit)}), options.json);
  return kExitOk;
}

}  // namespace periscope::viewer
