#include "profiler/capture/signal_unwind.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <cerrno>
#include <cstring>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

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

uint64_t interrupted_pc(const void* ucontext) {
  return static_cast<uint64_t>(static_cast<const ucontext_t*>(ucontext)->uc_mcontext.gregs[REG_RIP]);
}

struct LibgccWalk {
  uint64_t* pcs;
  size_t max_depth;
  size_t depth;
  uint64_t start_at;  // 0: from the first frame; else from the frame at this pc (a signal's)
  bool truncated;
};

_Unwind_Reason_Code add_libgcc_frame(_Unwind_Context* context, void* data) {
  auto* w = static_cast<LibgccWalk*>(data);
  int before_instruction = 0;
  const auto pc = static_cast<uint64_t>(_Unwind_GetIPInfo(context, &before_instruction));
  if (pc == 0) return _URC_END_OF_STACK;
  if (w->start_at != 0) {
    if (pc != w->start_at) return _URC_NO_REASON;  // the handler's own frames and the trampoline
    w->start_at = 0;
  }
  if (w->depth == w->max_depth) {
    w->truncated = true;
    return _URC_END_OF_STACK;
  }
  w->pcs[w->depth++] = pc;
  return _URC_NO_REASON;
}

// A call through a null function pointer: pc 0, and the caller's return address on top of the
// stack (read with process_vm_readv: a bad stack pointer fails rather than faults). libgcc cannot
// unwind from pc 0, so the stack stops there: [0, the caller].
size_t null_call_frames(const void* ucontext, uint64_t* pcs, size_t max_depth) {
  if (max_depth == 0) return 0;
  pcs[0] = 0;
  const auto sp = static_cast<uintptr_t>(static_cast<const ucontext_t*>(ucontext)->uc_mcontext.gregs[REG_RSP]);
  uint64_t caller = 0;
  iovec local{&caller, sizeof caller};
  iovec remote{reinterpret_cast<void*>(sp), sizeof caller};
  const bool read = ::syscall(SYS_process_vm_readv, ::getpid(), &local, 1, &remote, 1, 0) ==
                    static_cast<long>(sizeof caller);
  if (!read || caller == 0 || max_depth < 2) return 1;
  pcs[1] = caller;
  return 2;
}

// libgcc's unwinder from here, writing into `pcs`; from the frame at `start_at` when it is not 0
// (nothing if that frame is never reached).
size_t libgcc_walk(uint64_t* pcs, size_t max_depth, bool* truncated, uint64_t start_at) {
  LibgccWalk w{pcs, max_depth, 0, start_at, false};
  _Unwind_Backtrace(add_libgcc_frame, &w);
  if (w.depth == 0 && start_at != 0 && max_depth > 0) pcs[w.depth++] = start_at;  // at least where it was
  *truncated = w.truncated;
  return w.depth;
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
  struct sigaction action {};
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&action.sa_mask);
  if (agent_sigaction(sig, &action, nullptr) != 0) return std::string("sigaction: ") + std::strerror(errno);
  *installed = sig;
  return {};
}

// async-signal-safe: libunwind from the signal frame, writing into `pcs` (libgcc's unwinder from
// this frame, cut at the interrupted pc, before libunwind is prepared).
size_t unwind_signal_context(void* ucontext, uint64_t* pcs, size_t max_depth, bool* truncated) {
  *truncated = false;
  if (!ucontext) return 0;
  if (!unwinder_ready()) {
    if (interrupted_pc(ucontext) == 0) return null_call_frames(ucontext, pcs, max_depth);
    return libgcc_walk(pcs, max_depth, truncated, interrupted_pc(ucontext));
  }
  unw_cursor_t cursor;
  if (unw_init_local2(&cursor, static_cast<unw_context_t*>(ucontext), UNW_INIT_SIGNAL_FRAME) < 0) return 0;
  return walk(cursor, pcs, max_depth, truncated);
}

size_t unwind_here(uint64_t* pcs, size_t max_depth, bool* truncated) {
  *truncated = false;
  if (!unwinder_ready()) return libgcc_walk(pcs, max_depth, truncated, 0);
  ucontext_t context;  // libunwind's unw_context_t on x86-64: "think of unw_getcontext() as getcontext()"
  unw_cursor_t cursor;
  if (::getcontext(&context) != 0 || unw_init_local(&cursor, &context) < 0) return 0;
  return walk(cursor, pcs, max_depth, truncated);
}

}  // namespace periscope
