// The file descriptors the manhole owns (listening socket, sessions), remembered so that the
// child of a fork can close them without touching the parent's agent objects.
// All functions are async-signal-safe (atomics and close() only): the fork child handler uses them.
#pragma once

namespace periscope::manhole {

void track_fd(int fd);    // async-signal-safe; silently forgets fds beyond the table's capacity
void untrack_fd(int fd);  // async-signal-safe
void close_tracked_fds_in_fork_child();  // async-signal-safe; closes and forgets them all

}  // namespace periscope::manhole
