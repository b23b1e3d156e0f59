#include "tests/e2e/request_host.h"

#include <stdexcept>

namespace periscope::test {

using nlohmann::json;

RequestHost::RequestHost(const SocketDir& dir, Env env) : process({target_path("request_target")}, with_dir(dir, env)) {
  auto ready = process.read_line();
  if (!ready || ready->rfind("ready ", 0) != 0) throw std::runtime_error("request_target: " + process.stderr_text());
}

Env RequestHost::with_dir(const SocketDir& dir, Env env) {
  env["PERISCOPE_SOCKET_DIR"] = dir.path();
  if (!env.count("PERISCOPE_SLOW_MS")) env["PERISCOPE_SLOW_MS"] = "100";
  if (!env.count("PERISCOPE_SLOW_INTERVAL_MS")) env["PERISCOPE_SLOW_INTERVAL_MS"] = "100";
  return env;
}

void RequestHost::run(const std::string& command, const std::string& expect_done) {
  process.write_stdin(command + "\n");
  auto line = process.read_line(30s);
  if (line != "done " + expect_done) throw std::runtime_error("'" + command + "' gave " + line.value_or("EOF"));
}

json RequestHost::slow() {
  auto r = periscope({"slow", "--json", pid()});
  if (r.exit_code != 0) throw std::runtime_error(r.err);
  return json::parse(r.out)["reports"];
}

const json* report_named(const json& reports, const std::string& name) {
  for (const auto& r : reports) {
    if (r["name"] == name) return &r;
  }
  return nullptr;
}

json RequestHost::finished_report(const std::string& name) {
  json found;
  wait_until([&] {
    const json reports = slow();
    const json* r = report_named(reports, name);
    if (r && (*r)["finished"].get<bool>()) found = *r;
    return !found.is_null();
  });
  return found;
}

}  // namespace periscope::test
