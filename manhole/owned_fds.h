// The file descriptors the agent owns (listening sockets, sessions, and the io_context's own
// epoll/eventfd/timerfd), known by identity — (st_dev, st_ino), plus the link text for anonymous
// inodes, which all share one inode — never by number alone: hosts close every descriptor
// (closefrom, daemonizing) and reopen their own files on the same numbers.
//
// Opening (accept) and closing go through this table under one mutex. Fork takes no lock (a
// lock taken around fork costs the host a copied page in parent and child on every fork): the
// table is a fixed array whose slots publish their fd after their identity, so a fork child's
// copy is always safe to read. A descriptor whose identity changed is forgotten, never closed:
// its number is the host's now. At most 1024 descriptors (accept beyond that fails, EMFILE).
#pragma once

#include <string>
#include <vector>

namespace periscope::manhole {

void track_fd(int fd);  // an fd we already own (the listening socket)
// accept4(CLOEXEC | NONBLOCK) and track, atomically with respect to fork; -1 and errno on failure.
int accept_tracked(int listen_fd);
// Forgets `fd` and closes it if it is still ours, atomically with respect to fork.
void close_tracked(int fd);

// The descriptors this process holds now (numbers), for telling which ones a library just opened.
std::vector<int> open_fd_numbers();
// Tracks the anonymous-inode descriptors (epoll, eventfd, timerfd) in `after` but not in `before`:
// what an io_context opened for itself. They are closed only in a fork child, only if still ours.
void track_new_anonymous_fds(const std::vector<int>& before, const std::vector<int>& after);

// Empty when every tracked descriptor is still ours; else which one is not, in words.
std::string first_lost_fd();
// After the host took some of our descriptors: closes those still ours, forgets every one.
void release_all_tracked();

// In a fork child (any thread of it, before the child's agent starts): close every tracked fd
// that is still ours (the parent keeps its copies) and empty the table.
void close_fd_table_in_fork_child();

}  // namespace periscope::manhole
