#include "profiler/capture/signal_unwind.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <cerrno>
#include <cstring>

#include "profiler/signal_delivery.h"

namespace periscope {

namespace {

bool signal_is_free(int sig) {
  struct sigaction current {};
  return agent_sigaction(sig, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
         current.sa_handler == SIG_DFL;
}

// async-signal-safe: steps an initialised cursor into `pcs`.
size_t walk(unw_cursor_t& cursor, uint64_t* pcs, size_t max_depth, bool* truncated) {
  size_t depth = 0;
  *truncated = false;
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0) break;
    if (depth == max_depth) {
      *truncated = true;
      break;
    }
    pcs[depth++] = ip;
  } while (unw_step(&cursor) > 0);
  return depth;
}

}  // namespace

std::string install_realtime_handler(int requested, SignalSearch search, const char* purpose,
                                     void (*handler)(int, siginfo_t*, void*), int* installed) {
  int sig = 0;
  if (requested != 0) {
    if (requested < SIGRTMIN || requested > SIGRTMAX) {
      return std::string(purpose) + " signal " + std::to_string(requested) + " is not a real-time signal (" +
             std::to_string(SIGRTMIN) + ".." + std::to_string(SIGRTMAX) + ")";
    }
    if (!signal_is_free(requested)) {
      return std::string(purpose) + " signal " + std::to_string(requested) + " already has a handler";
    }
    sig = requested;
  } else if (search == SignalSearch::kFromBottom) {
    for (int s = SIGRTMIN + 8; s <= SIGRTMAX && sig == 0; ++s) sig = signal_is_free(s) ? s : 0;
  } else {
    for (int s = SIGRTMAX; s >= SIGRTMIN + 8 && sig == 0; --s) sig = signal_is_free(s) ? s : 0;
  }
  if (sig == 0) return std::string("no free real-time signal for ") + purpose;
  // libunwind initialises itself (under a mutex, allocating) on first use: do it here, not in a handler.
  uint64_t warm[8];
  bool truncated = false;
  unwind_here(warm, 8, &truncated);
  struct sigaction action {};
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&action.sa_mask);
  if (agent_sigaction(sig, &action, nullptr) != 0) return std::string("sigaction: ") + std::strerror(errno);
  *installed = sig;
  return {};
}

// async-signal-safe: libunwind from the signal frame, writing into `pcs`.
size_t unwind_signal_context(void* ucontext, uint64_t* pcs, size_t max_depth, bool* truncated) {
  unw_cursor_t cursor;
  *truncated = false;
  if (!ucontext || unw_init_local2(&cursor, static_cast<unw_context_t*>(ucontext), UNW_INIT_SIGNAL_FRAME) < 0) {
    return 0;
  }
  return walk(cursor, pcs, max_depth, truncated);
}

// async-signal-safe: libunwind from here, writing into `pcs`.
size_t unwind_here(uint64_t* pcs, size_t max_depth, bool* truncated) {
  unw_context_t context;
  unw_cursor_t cursor;
  *truncated = false;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) < 0) return 0;
  return walk(cursor, pcs, max_depth, truncated);
}

}  // namespace periscope
