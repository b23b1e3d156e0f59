// What both in-process samplers of stacks share: choosing and installing a real-time signal that
// nobody else uses, and unwinding with libunwind into caller-provided memory.
//
// The unwind functions are async-signal-safe (libunwind's local unwinder, no allocation, no
// locks of ours); libunwind's one-time initialisation happens in install_realtime_handler.
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>

namespace periscope {

enum class SignalSearch { kFromBottom, kFromTop };  // from SIGRTMIN+8 up, or from SIGRTMAX down

// Installs `handler` (SA_SIGINFO | SA_RESTART, every signal blocked while it runs) on `requested`,
// or on the first free real-time signal found by `search` when `requested` is 0. A signal that
// already has a handler is refused. Sets *installed; empty on success, else why not, naming
// `purpose` ("stack capture", "profiling").
[[nodiscard]] std::string install_realtime_handler(int requested, SignalSearch search, const char* purpose,
                                                   void (*handler)(int, siginfo_t*, void*), int* installed);

// async-signal-safe: the stack interrupted by a signal, from the handler's ucontext; frame 0 is the
// interrupted pc. Returns the depth; *truncated when the stack was deeper than max_depth.
size_t unwind_signal_context(void* ucontext, uint64_t* pcs, size_t max_depth, bool* truncated);

// async-signal-safe: the calling thread's own stack.
size_t unwind_here(uint64_t* pcs, size_t max_depth, bool* truncated);

}  // namespace periscope
