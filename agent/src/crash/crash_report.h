// Crash last words: on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT the agent writes what the
// process was doing to stderr (and to PERISCOPE_CRASH_LOG): the signal and fault address, the
// crashing thread's stack as raw addresses with module+offset (`periscope view-crash` or addr2line
// names them), every thread's name, and the requests in flight with their ages and threads.
// Then the disposition the signal had before the agent runs: the host's own handler if it had one,
// else the default, so core dumps and exit statuses are exactly as without the agent.
//
// Threading: install from the agent's lifecycle (once per process; a later agent keeps them).
// The handler and everything it calls are async-signal-safe: preallocated memory, raw system
// calls, no locks, no allocation. A crash inside the report itself ends the report there and runs
// the previous disposition; a second thread crashing meanwhile waits (bounded) for the first.
#pragma once

#include <string>

namespace periscope::agent {

// Empty on success, else why the handlers are not installed (the rest of the agent works on).
[[nodiscard]] std::string install_crash_handlers(const std::string& log_path);
// The dispositions from before install, where the agent's handler is still the one (eject).
void uninstall_crash_handlers();
// In a fork child (one thread): a report a parent thread was writing is not the child's.
void reset_crash_report_in_fork_child();

}  // namespace periscope::agent
