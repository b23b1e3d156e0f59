// The C API: the same agent for hosts written in C.
#include "agent/src/logging.h"
#include "periscope/periscope.h"

extern "C" {

int periscope_start(void) {
  periscope::Status status = periscope::start(periscope::Options::from_env());
  if (status.ok()) return 0;
  periscope::agent::log_line("agent not started: " + status.message());
  return -1;
}

void periscope_stop(void) { periscope::stop(); }

int periscope_running(void) { return periscope::running() ? 1 : 0; }

}  // extern "C"
