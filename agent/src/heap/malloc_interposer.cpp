// The allocation functions of the C library and of C++, passed on to the allocator the process
// would use without the agent, with the heap sampler told of each while it is on. With sampling
// and tracking off, a call costs two atomic loads (the resolved table, the sampler's flag) and an
// indirect call.
//
// Which allocator is "next": when the process's malloc is ours (preloaded, or linked before the
// allocator), the one after us (RTLD_NEXT); when it is not (an injected agent, an allocator in the
// executable), the process's own (RTLD_DEFAULT), so that the agent's own calls (bound to these
// definitions by -Bsymbolic-functions) use the allocator everyone else uses.
//
// Before the table is resolved, dlsym itself may allocate: those few blocks come from a static
// arena and are never given back (glibc's memusage does the same).
#include "agent/src/heap/malloc_interposer.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <new>
#include <type_traits>
#include <unistd.h>

#include "agent/src/heap/heap_sampler.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

extern "C" {
void* malloc(size_t size);
void free(void* block);
void* calloc(size_t count, size_t size);
void* realloc(void* block, size_t size);
void* memalign(size_t alignment, size_t size);
int posix_memalign(void** out, size_t alignment, size_t size);
void* aligned_alloc(size_t alignment, size_t size);
void* valloc(size_t size);
void* pvalloc(size_t size);
}

namespace {

using periscope::agent::g_heap_sampling;
using periscope::agent::g_heap_tracking;
using periscope::agent::heap_note_alloc;
using periscope::agent::heap_note_free;
using periscope::agent::HeapPassThrough;

enum Fn {
  kMalloc, kFree, kCalloc, kRealloc, kMemalign, kPosixMemalign, kAlignedAlloc, kValloc, kPvalloc,
  kNew, kNewArray, kNewNothrow, kNewArrayNothrow, kNewAligned, kNewArrayAligned, kNewAlignedNothrow,
  kNewArrayAlignedNothrow,
  kDelete, kDeleteArray, kDeleteSized, kDeleteArraySized, kDeleteAligned, kDeleteArrayAligned,
  kDeleteSizedAligned, kDeleteArraySizedAligned, kDeleteNothrow, kDeleteArrayNothrow,
  kDeleteAlignedNothrow, kDeleteArrayAlignedNothrow,
  kFnCount
};

const char* const kNames[kFnCount] = {
    "malloc", "free", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc", "valloc", "pvalloc",
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t"};

void* g_next[kFnCount];
std::atomic<bool> g_resolved{false};
bool g_malloc_is_ours = false;
__thread bool t_resolving __attribute__((tls_model("initial-exec"))) = false;

// The bootstrap arena: a 16-byte header holds each block's size (realloc copies out of it).
alignas(64) char g_arena[64 * 1024];
std::atomic<size_t> g_arena_used{0};

bool in_arena(const void* p) {
  return p >= static_cast<const void*>(g_arena) && p < static_cast<const void*>(g_arena + sizeof g_arena);
}

void* arena_alloc(size_t size, size_t alignment) {
  if (alignment < 16) alignment = 16;
  size_t start = g_arena_used.load(std::memory_order_relaxed), begin, end;
  do {
    begin = (start + 16 + alignment - 1) & ~(alignment - 1);
    end = begin + size;
    if (size > sizeof g_arena || end > sizeof g_arena) return nullptr;
  } while (!g_arena_used.compare_exchange_weak(start, end, std::memory_order_relaxed));
  std::memcpy(g_arena + begin - sizeof(size_t), &size, sizeof size);
  return g_arena + begin;
}

size_t arena_size(const void* p) {
  size_t size;
  std::memcpy(&size, static_cast<const char*>(p) - sizeof(size_t), sizeof size);
  return size;
}

void* own_address(Fn fn);

void resolve() {
  t_resolving = true;
  void* found[kFnCount];
  const bool ours = ::dlsym(RTLD_DEFAULT, "malloc") == own_address(kMalloc);
  for (int i = 0; i < kFnCount; ++i) {
    void* global = ::dlsym(RTLD_DEFAULT, kNames[i]);
    found[i] = global && global != own_address(static_cast<Fn>(i)) ? global : ::dlsym(RTLD_NEXT, kNames[i]);
  }
  for (int i = 0; i < kFnCount; ++i) g_next[i] = found[i];
  g_malloc_is_ours = ours;
  g_resolved.store(true, std::memory_order_release);
  t_resolving = false;
}

// Null while this thread resolves the table (the caller uses the arena).
template <typename F>
F next(Fn fn) {
  if (__builtin_expect(!g_resolved.load(std::memory_order_acquire), 0)) {
    if (t_resolving) return nullptr;
    resolve();
  }
  return reinterpret_cast<F>(g_next[fn]);
}

__attribute__((constructor(101))) void resolve_at_load() {
  if (!g_resolved.load(std::memory_order_acquire)) resolve();
}

bool profiling_anything() {
  return g_heap_sampling.load(std::memory_order_relaxed) || g_heap_tracking.load(std::memory_order_relaxed);
}

void note_alloc(void* block, size_t size) {
  if (__builtin_expect(g_heap_sampling.load(std::memory_order_relaxed), 0)) heap_note_alloc(block, size);
}

void note_free(void* block) {
  if (__builtin_expect(g_heap_tracking.load(std::memory_order_relaxed), 0)) heap_note_free(block);
}

// Only when an allocator lacks one of these (dlsym found none after us).
void* fallback_aligned(size_t alignment, size_t size) {
  void* p = nullptr;
  return posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, size) == 0 ? p : nullptr;
}

template <typename T>
size_t aligned_of(T arg, size_t otherwise) {
  if constexpr (std::is_same_v<T, std::align_val_t>) return static_cast<size_t>(arg);
  return otherwise;
}

template <Fn fn, typename... Args>
void* call_new(size_t size, Args... args) {
  auto f = next<void* (*)(size_t, Args...)>(fn);
  if (!f) {
    constexpr bool aligned = fn == kNewAligned || fn == kNewArrayAligned || fn == kNewAlignedNothrow ||
                             fn == kNewArrayAlignedNothrow;
    constexpr bool nothrow = fn == kNewNothrow || fn == kNewArrayNothrow || fn == kNewAlignedNothrow ||
                             fn == kNewArrayAlignedNothrow;
    size_t alignment = 16;
    ((alignment = aligned_of(args, alignment)), ...);
    void* p = aligned ? fallback_aligned(alignment, size ? size : 1) : malloc(size ? size : 1);
    if (!p && !nothrow) throw std::bad_alloc();
    return p;
  }
  if (!profiling_anything()) return f(size, args...);
  void* p;
  {
    HeapPassThrough pass;  // operator new of libstdc++ calls malloc: one sample, here
    p = f(size, args...);
  }
  note_alloc(p, size);
  return p;
}

template <Fn fn, typename... Args>
void call_delete(void* block, Args... args) {
  if (!block) return;
  if (in_arena(block)) return;
  auto f = next<void (*)(void*, Args...)>(fn);
  if (!f) return free(block);
  if (!profiling_anything()) return f(block, args...);
  note_free(block);
  HeapPassThrough pass;
  f(block, args...);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* malloc(size_t size) {
  auto f = next<void* (*)(size_t)>(kMalloc);
  if (!f) return arena_alloc(size, 16);
  void* p = f(size);
  note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) void free(void* block) {
  if (!block || in_arena(block)) return;
  note_free(block);
  if (auto f = next<void (*)(void*)>(kFree)) f(block);  // none while this thread resolves: kept
}

__attribute__((visibility("default"))) void* calloc(size_t count, size_t size) {
  auto f = next<void* (*)(size_t, size_t)>(kCalloc);
  if (!f) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return nullptr;
    return arena_alloc(total, 16);  // static memory: zeroed, never reused
  }
  void* p = f(count, size);
  note_alloc(p, count * size);
  return p;
}

__attribute__((visibility("default"))) void* realloc(void* block, size_t size) {
  auto f = next<void* (*)(void*, size_t)>(kRealloc);
  if (!f) return arena_alloc(size, 16);
  if (in_arena(block)) {
    void* p = malloc(size);
    if (p) std::memcpy(p, block, arena_size(block) < size ? arena_size(block) : size);
    return p;
  }
  if (block) note_free(block);
  void* p = f(block, size);
  if (size != 0) note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) void* memalign(size_t alignment, size_t size) {
  auto f = next<void* (*)(size_t, size_t)>(kMemalign);
  if (!f) return arena_alloc(size, alignment);
  void* p = f(alignment, size);
  note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) int posix_memalign(void** out, size_t alignment, size_t size) {
  auto f = next<int (*)(void**, size_t, size_t)>(kPosixMemalign);
  if (!f) return (*out = arena_alloc(size, alignment)) ? 0 : ENOMEM;
  const int r = f(out, alignment, size);
  if (r == 0) note_alloc(*out, size);
  return r;
}

__attribute__((visibility("default"))) void* aligned_alloc(size_t alignment, size_t size) {
  auto f = next<void* (*)(size_t, size_t)>(kAlignedAlloc);
  if (!f) return arena_alloc(size, alignment);
  void* p = f(alignment, size);
  note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) void* valloc(size_t size) {
  auto f = next<void* (*)(size_t)>(kValloc);
  void* p = f ? f(size) : fallback_aligned(static_cast<size_t>(::sysconf(_SC_PAGESIZE)), size);
  note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) void* pvalloc(size_t size) {
  auto f = next<void* (*)(size_t)>(kPvalloc);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* p = f ? f(size) : fallback_aligned(page, (size + page - 1) / page * page);
  note_alloc(p, size);
  return p;
}

}  // extern "C"

void* operator new(std::size_t n) { return call_new<kNew>(n); }
void* operator new[](std::size_t n) { return call_new<kNewArray>(n); }
void* operator new(std::size_t n, const std::nothrow_t& t) noexcept {
  try {
    return call_new<kNewNothrow, const std::nothrow_t&>(n, t);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  try {
    return call_new<kNewArrayNothrow, const std::nothrow_t&>(n, t);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return call_new<kNewAligned>(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return call_new<kNewArrayAligned>(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
  try {
    return call_new<kNewAlignedNothrow, std::align_val_t, const std::nothrow_t&>(n, a, t);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
  try {
    return call_new<kNewArrayAlignedNothrow, std::align_val_t, const std::nothrow_t&>(n, a, t);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { call_delete<kDelete>(p); }
void operator delete[](void* p) noexcept { call_delete<kDeleteArray>(p); }
void operator delete(void* p, std::size_t n) noexcept { call_delete<kDeleteSized>(p, n); }
void operator delete[](void* p, std::size_t n) noexcept { call_delete<kDeleteArraySized>(p, n); }
void operator delete(void* p, std::align_val_t a) noexcept { call_delete<kDeleteAligned>(p, a); }
void operator delete[](void* p, std::align_val_t a) noexcept { call_delete<kDeleteArrayAligned>(p, a); }
void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept {
  call_delete<kDeleteSizedAligned>(p, n, a);
}
void operator delete[](void* p, std::size_t n, std::align_val_t a) noexcept {
  call_delete<kDeleteArraySizedAligned>(p, n, a);
}
void operator delete(void* p, const std::nothrow_t& t) noexcept {
  call_delete<kDeleteNothrow, const std::nothrow_t&>(p, t);
}
void operator delete[](void* p, const std::nothrow_t& t) noexcept {
  call_delete<kDeleteArrayNothrow, const std::nothrow_t&>(p, t);
}
void operator delete(void* p, std::align_val_t a, const std::nothrow_t& t) noexcept {
  call_delete<kDeleteAlignedNothrow, std::align_val_t, const std::nothrow_t&>(p, a, t);
}
void operator delete[](void* p, std::align_val_t a, const std::nothrow_t& t) noexcept {
  call_delete<kDeleteArrayAlignedNothrow, std::align_val_t, const std::nothrow_t&>(p, a, t);
}

namespace {

// Our own definitions, to tell them from the process's (under -Bsymbolic-functions these are ours).
void* own_address(Fn fn) {
  using std::align_val_t;
  using std::nothrow_t;
  using std::size_t;
  switch (fn) {
    case kMalloc: return reinterpret_cast<void*>(&malloc);
    case kFree: return reinterpret_cast<void*>(&free);
    case kCalloc: return reinterpret_cast<void*>(&calloc);
    case kRealloc: return reinterpret_cast<void*>(&realloc);
    case kMemalign: return reinterpret_cast<void*>(&memalign);
    case kPosixMemalign: return reinterpret_cast<void*>(&posix_memalign);
    case kAlignedAlloc: return reinterpret_cast<void*>(&aligned_alloc);
    case kValloc: return reinterpret_cast<void*>(&valloc);
    case kPvalloc: return reinterpret_cast<void*>(&pvalloc);
    case kNew: return reinterpret_cast<void*>(static_cast<void* (*)(size_t)>(&::operator new));
    case kNewArray: return reinterpret_cast<void*>(static_cast<void* (*)(size_t)>(&::operator new[]));
    case kNewNothrow:
      return reinterpret_cast<void*>(static_cast<void* (*)(size_t, const nothrow_t&) noexcept>(&::operator new));
    case kNewArrayNothrow:
      return reinterpret_cast<void*>(static_cast<void* (*)(size_t, const nothrow_t&) noexcept>(&::operator new[]));
    case kNewAligned: return reinterpret_cast<void*>(static_cast<void* (*)(size_t, align_val_t)>(&::operator new));
    case kNewArrayAligned:
      return reinterpret_cast<void*>(static_cast<void* (*)(size_t, align_val_t)>(&::operator new[]));
    case kNewAlignedNothrow:
      return reinterpret_cast<void*>(
          static_cast<void* (*)(size_t, align_val_t, const nothrow_t&) noexcept>(&::operator new));
    case kNewArrayAlignedNothrow:
      return reinterpret_cast<void*>(
          static_cast<void* (*)(size_t, align_val_t, const nothrow_t&) noexcept>(&::operator new[]));
    case kDelete: return reinterpret_cast<void*>(static_cast<void (*)(void*) noexcept>(&::operator delete));
    case kDeleteArray: return reinterpret_cast<void*>(static_cast<void (*)(void*) noexcept>(&::operator delete[]));
    case kDeleteSized:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, size_t) noexcept>(&::operator delete));
    case kDeleteArraySized:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, size_t) noexcept>(&::operator delete[]));
    case kDeleteAligned:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, align_val_t) noexcept>(&::operator delete));
    case kDeleteArrayAligned:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, align_val_t) noexcept>(&::operator delete[]));
    case kDeleteSizedAligned:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, size_t, align_val_t) noexcept>(&::operator delete));
    case kDeleteArraySizedAligned:
      return reinterpret_cast<void*>(
          static_cast<void (*)(void*, size_t, align_val_t) noexcept>(&::operator delete[]));
    case kDeleteNothrow:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, const nothrow_t&) noexcept>(&::operator delete));
    case kDeleteArrayNothrow:
      return reinterpret_cast<void*>(static_cast<void (*)(void*, const nothrow_t&) noexcept>(&::operator delete[]));
    case kDeleteAlignedNothrow:
      return reinterpret_cast<void*>(
          static_cast<void (*)(void*, align_val_t, const nothrow_t&) noexcept>(&::operator delete));
    case kDeleteArrayAlignedNothrow:
      return reinterpret_cast<void*>(
          static_cast<void (*)(void*, align_val_t, const nothrow_t&) noexcept>(&::operator delete[]));
    case kFnCount: break;
  }
  return nullptr;
}

}  // namespace

namespace periscope::agent {

std::string malloc_interposer_problem() {
  if (!g_resolved.load(std::memory_order_acquire)) resolve();
  if (g_malloc_is_ours) return {};
  Dl_info info{};
  void* global = ::dlsym(RTLD_DEFAULT, "malloc");
  const std::string owner = global && ::dladdr(global, &info) && info.dli_fname && *info.dli_fname
                                ? info.dli_fname
                                : std::string("the executable");
  return "this process's malloc is " + owner +
         "'s, not the agent's: heap profiling needs libperiscope.so from the start, before the allocator "
         "(LD_PRELOAD=libperiscope.so, or linked ahead of it); an injected agent cannot see allocations";
}

}  // namespace periscope::agent

#else  // sanitizer builds

namespace periscope::agent {

std::string malloc_interposer_problem() {
  return "heap profiling is not built into sanitizer builds (the sanitizer replaces malloc)";
}

}  // namespace periscope::agent

#endif
