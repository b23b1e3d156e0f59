// slow and inflight: the watchdog's reports and the requests running now.
#include <cerrno>
#include <cstdlib>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/watchdog/slow_report_format.h"
#include "agent/src/watchdog/watchdog.h"

namespace periscope::agent {

namespace {

using protocol::Reply;

bool parse_count(const std::string& word, unsigned long long* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoull(word.c_str(), &end, 10);
  return errno == 0 && end != word.c_str() && *end == '\0' && word[0] != '-';
}

Reply slow(const LiveParts& parts, const manhole::Args& args) {
  Watchdog* watchdog = parts.watchdog.load();
  if (!watchdog) return Reply::failure("slow: the watchdog is not running");
  unsigned long long since = 0;
  if (!args.empty() && !parse_count(args[0], &since)) {
    return Reply::failure("slow: SINCE must be a report number, not '" + args[0] + "'");
  }
  SlowReportList reports = watchdog->reports_since(since);
  return Reply::success(render_reports(reports), reports_to_json(reports));
}

Reply inflight(const LiveParts& parts, const manhole::Args& args) {
  Watchdog* watchdog = parts.watchdog.load();
  if (!watchdog) return Reply::failure("inflight: the watchdog is not running");
  unsigned long long limit = 100;
  if (!args.empty() && (!parse_count(args[0], &limit) || limit == 0)) {
    return Reply::failure("inflight: LIMIT must be a positive number, not '" + args[0] + "'");
  }
  InflightList list = watchdog->inflight(limit);
  return Reply::success(render_inflight(list), inflight_to_json(list));
}

}  // namespace

std::string add_slow_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  if (auto err = registry.add({"slow", "[SINCE]", "slow requests caught in flight, with their stacks (reports after SINCE)",
                               [&parts](const manhole::Args& args) { return slow(parts, args); }});
      !err.empty()) {
    return err;
  }
  return registry.add({"inflight", "[LIMIT]", "requests running now, oldest first (default 100)",
                       [&parts](const manhole::Args& args) { return inflight(parts, args); }});
}

}  // namespace periscope::agent
