// Choosing the thread `periscope inject` calls dlopen on. dlopen takes the dynamic loader's lock
// and allocates: a thread stopped inside malloc or the loader (holding their locks) would
// deadlock on itself. A thread blocked in a waiting system call (epoll_wait, poll, read, accept,
// nanosleep...) holds neither, so those come first, the main thread before others; a process
// whose threads never wait gets a thread stopped in its own code, outside libc, the loader and
// allocator libraries. Only the chosen thread is stopped for longer than a look at its registers.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <sys/types.h>

#include "viewer/inject/remote_call.h"

namespace periscope::viewer {

struct SafePoint {
  std::unique_ptr<TracedThread> thread;  // stopped, state saved; null when none was found
  pid_t tid = 0;
  std::string where;  // "epoll_wait", "user code in /usr/bin/python3.11"
  std::string error;  // why none was found
  bool denied = false;  // ptrace itself was refused: `error` says what would allow it
};

SafePoint stop_at_safe_point(pid_t pid, std::chrono::milliseconds wait);

}  // namespace periscope::viewer
