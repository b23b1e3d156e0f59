#include "agent/src/logging.h"

#include <unistd.h>

namespace periscope::agent {

void log_line(const std::string& message) {
  try {
    std::string line = "periscope[" + std::to_string(::getpid()) + "]: " + message + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  } catch (...) {
  }
}

}  // namespace periscope::agent
