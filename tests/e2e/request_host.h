// tests/targets/request_target (a host that serves periscope::Requests) driven from a test.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tests/e2e/harness.h"

namespace periscope::test {

struct RequestHost {
  // Slow threshold and watchdog interval 100 ms unless `env` says otherwise.
  explicit RequestHost(const SocketDir& dir, Env env = {});
  static Env with_dir(const SocketDir& dir, Env env);
  // Sends one command and waits (30 s at most) for "done <expect_done>"; throws otherwise.
  void run(const std::string& command, const std::string& expect_done);
  std::string pid() const { return std::to_string(process.pid()); }
  nlohmann::json slow();  // `periscope slow --json`'s reports
  // The report of request `name` once it has finished; null if it does not within 10 s.
  nlohmann::json finished_report(const std::string& name);
  Process process;
};

// The report of request `name` among `reports`, or nullptr.
const nlohmann::json* report_named(const nlohmann::json& reports, const std::string& name);

}  // namespace periscope::test
