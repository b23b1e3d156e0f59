// stacks: every thread's stack, captured in-process by signal.
#include <chrono>
#include <memory>
#include <unistd.h>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/own_symbolizer.h"
#include "profiler/capture/own_stacks.h"
#include "profiler/capture/stack_capture.h"

namespace periscope::agent {

namespace {

protocol::Reply stacks(const LiveParts& parts, const manhole::Args& args) {
  if (StackCapture::signal_number() == 0) {
    return protocol::Reply::failure("stack capture is off (no usable signal; see the host's stderr)");
  }
  std::vector<pid_t> only;
  bool raw = false;  // the viewer symbolizes: nothing of the debug information enters the host
  for (const auto& a : args) {
    if (a == "--raw") {
      raw = true;
      continue;
    }
    char* end = nullptr;
    long tid = std::strtol(a.c_str(), &end, 10);
    if (end == a.c_str() || *end != '\0' || tid <= 0) return protocol::Reply::failure("stacks: bad TID '" + a + "'");
    only.push_back(static_cast<pid_t>(tid));
  }
  auto started = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> held;
  if (!raw) held = own_symbolizer_lock();
  auto result = capture_own_stacks(only, std::chrono::milliseconds(parts.stack_timeout_ms.load()),
                                   raw ? nullptr : &own_symbolizer(held));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json data = stacks_to_json(result);
  data["method"] = "agent";
  data["pid"] = ::getpid();
  data["elapsed_ms"] = ms;
  data["raw"] = raw;
  if (!raw) data["symbolizer_error"] = own_symbolizer(held).error();
  std::string text = raw ? std::to_string(result.size()) + " threads captured; addresses only (--raw)\n"
                         : render_stacks(result);
  return protocol::Reply::success(std::move(text), std::move(data));
}

}  // namespace

std::string add_stacks_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  return registry.add({"stacks", "[--raw] [TID...]",
                       "every thread's stack (or only these threads), symbolized; --raw: addresses only",
                       [&parts](const manhole::Args& args) { return stacks(parts, args); }});
}

}  // namespace periscope::agent
