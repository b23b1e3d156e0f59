#include "agent/src/slow_commands.h"

#include <cstdlib>

#include "agent/src/agent.h"
#include "agent/src/watchdog/watchdog.h"

namespace periscope::agent {

namespace {

bool parse_count(const std::string& word, unsigned long long* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoull(word.c_str(), &end, 10);
  return errno == 0 && end != word.c_str() && *end == '\0' && word[0] != '-';
}

protocol::Reply slow(const manhole::Args& args) {
  Watchdog* watchdog = agent_watchdog();
  if (!watchdog) return protocol::Reply::failure("slow: the watchdog is not running");
  unsigned long long since = 0;
  if (!args.empty() && !parse_count(args[0], &since)) {
    return protocol::Reply::failure("slow: SINCE must be a report number, not '" + args[0] + "'");
  }
  auto data = watchdog->reports_json(since);
  std::string text = Watchdog::render_reports(data);  // before data is moved from
  return protocol::Reply::success(std::move(text), std::move(data));
}

protocol::Reply inflight(const manhole::Args& args) {
  Watchdog* watchdog = agent_watchdog();
  if (!watchdog) return protocol::Reply::failure("inflight: the watchdog is not running");
  unsigned long long limit = 100;
  if (!args.empty() && (!parse_count(args[0], &limit) || limit == 0)) {
    return protocol::Reply::failure("inflight: LIMIT must be a positive number, not '" + args[0] + "'");
  }
  auto data = watchdog->inflight_json(limit);
  std::string text = Watchdog::render_inflight(data);  // before data is moved from
  return protocol::Reply::success(std::move(text), std::move(data));
}

}  // namespace

std::string add_slow_commands(manhole::CommandRegistry& registry) {
  if (auto err = registry.add({"slow", "[SINCE]", "slow requests caught in flight, with their stacks (reports after SINCE)",
                               slow});
      !err.empty()) {
    return err;
  }
  return registry.add({"inflight", "[LIMIT]", "requests running now, oldest first (default 100)", inflight});
}

}  // namespace periscope::agent
