// The agent's voice on the host's stderr: rare, one line each, prefixed "periscope[<pid>]: ".
#pragma once

#include <string>

namespace periscope::agent {

void log_line(const std::string& message);  // one write(2); never throws

}  // namespace periscope::agent
