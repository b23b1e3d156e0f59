// libunwind, loaded when the agent first unwinds (a `stacks`, a profile, heap profiling), not when
// the host starts. Linking it would map libunwind and liblzma into every host at exec, and every
// fork would copy those mappings (bench/fork_cost.sh), whether or not anybody ever asks for a
// stack. These definitions stand in for the functions of libunwind's local unwinder that
// signal_unwind_linux.cpp, sampler_linux.cpp and the heap sampler call; prepare_unwinder() finds the
// real ones (dlopen/dlsym) on a normal thread, before any handler may need them. Until then, or
// where libunwind.so.8 cannot be loaded, they fail as libunwind's own do and the callers use
// libgcc's unwinder instead.
//
// Hidden, like everything in the agent but its API: the host's own use of libunwind is untouched.
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <atomic>
#include <dlfcn.h>
#include <mutex>

#include "profiler/capture/signal_unwind.h"

namespace {

struct Real {
  decltype(&::unw_init_local) init_local = nullptr;
  decltype(&::unw_init_local2) init_local2 = nullptr;
  decltype(&::unw_get_reg) get_reg = nullptr;
  decltype(&::unw_step) step = nullptr;
  decltype(&::unw_backtrace) backtrace = nullptr;
};
Real g_real;
std::atomic<bool> g_ready{false};  // g_real is complete (release/acquire)

template <typename F>
F find(void* library, const char* name) {
  return reinterpret_cast<F>(::dlsym(library, name));
}

#define PERISCOPE_STR2(x) #x
#define PERISCOPE_STR(x) PERISCOPE_STR2(x)

bool load() {
  void* library = ::dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (!library) return false;
  // The names behind libunwind.h's macros (unw_step is _ULx86_64_step, ...).
  g_real.init_local = find<decltype(g_real.init_local)>(library, PERISCOPE_STR(unw_init_local));
  g_real.init_local2 = find<decltype(g_real.init_local2)>(library, PERISCOPE_STR(unw_init_local2));
  g_real.get_reg = find<decltype(g_real.get_reg)>(library, PERISCOPE_STR(unw_get_reg));
  g_real.step = find<decltype(g_real.step)>(library, PERISCOPE_STR(unw_step));
  g_real.backtrace = find<decltype(g_real.backtrace)>(library, "unw_backtrace");
  return g_real.init_local && g_real.init_local2 && g_real.get_reg && g_real.step && g_real.backtrace;
}

}  // namespace

// async-signal-safe, each: one acquire load and the real function, or libunwind's failure value.
extern "C" int unw_init_local(unw_cursor_t* cursor, unw_context_t* context) {
  return g_ready.load(std::memory_order_acquire) ? g_real.init_local(cursor, context) : -UNW_EUNSPEC;
}
extern "C" int unw_init_local2(unw_cursor_t* cursor, unw_context_t* context, int flags) {
  return g_ready.load(std::memory_order_acquire) ? g_real.init_local2(cursor, context, flags) : -UNW_EUNSPEC;
}
extern "C" int unw_get_reg(unw_cursor_t* cursor, int reg, unw_word_t* value) {
  return g_ready.load(std::memory_order_acquire) ? g_real.get_reg(cursor, reg, value) : -UNW_EUNSPEC;
}
extern "C" int unw_step(unw_cursor_t* cursor) {
  return g_ready.load(std::memory_order_acquire) ? g_real.step(cursor) : -UNW_EUNSPEC;
}
extern "C" int unw_backtrace(void** frames, int size) {
  return g_ready.load(std::memory_order_acquire) ? g_real.backtrace(frames, size) : 0;
}

namespace periscope {

bool unwinder_ready() { return g_ready.load(std::memory_order_acquire); }

bool prepare_unwinder() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!load()) return;
    g_ready.store(true, std::memory_order_release);
    // libunwind initialises itself (under a mutex, allocating) on first use: here, not in a handler.
    uint64_t warm[8];
    bool truncated = false;
    (void)unwind_here(warm, 8, &truncated);
    void* frames[8];
    (void)unw_backtrace(frames, 8);
  });
  return unwinder_ready();
}

}  // namespace periscope
