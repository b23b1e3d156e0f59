// The file descriptors the manhole owns (listening socket, sessions), kept in a table so that
// the child of a fork can close them without touching the parent's agent objects.
//
// Opening (accept) and closing go through this table under one mutex that the fork prepare
// handler also takes, so a fork never sees an fd half-opened or half-closed.
#pragma once

namespace periscope::manhole {

void track_fd(int fd);  // an fd we already own (the listening socket)
// accept4(CLOEXEC | NONBLOCK) and track, atomically with respect to fork; -1 and errno on failure.
int accept_tracked(int listen_fd);
// Forgets and closes `fd`, atomically with respect to fork.
void close_tracked(int fd);

// pthread_atfork: lock before fork; unlock in the parent; in the child close every tracked fd
// (the parent keeps its copies) and unlock.
void lock_fd_table_for_fork();
void unlock_fd_table_in_fork_parent();
void close_fd_table_in_fork_child();

}  // namespace periscope::manhole
