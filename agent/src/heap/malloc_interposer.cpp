// The allocation functions of the C library and of C++, passed on to the allocator the process
// would use without the agent, with the heap sampler told of the sampled ones. An allocation costs
// a subtraction from a thread-local distance and a jump to the allocator; a free, a filter byte
// and a jump (heap_sampler.h).
// C++'s operator new and delete are that allocator's malloc and free (as libstdc++'s are), with
// the standard's new_handler loop: one layer, where passing them on would go through us twice.
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
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <new>
#include <unistd.h>

#include "agent/src/heap/heap_sampler.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

extern "C" {
void* malloc(size_t size);
void free(void* block) noexcept;
void* calloc(size_t count, size_t size);
void* realloc(void* block, size_t size);
void* memalign(size_t alignment, size_t size);
int posix_memalign(void** out, size_t alignment, size_t size);
void* aligned_alloc(size_t alignment, size_t size);
void* valloc(size_t size);
void* pvalloc(size_t size);
}

namespace {

using periscope::agent::heap_note_alloc;
using periscope::agent::heap_note_free;
using periscope::agent::heap_untrack_slow;
using periscope::agent::heap_count_crosses;
using periscope::agent::heap_free_may_be_tracked;
using periscope::agent::heap_sample_slow;

using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*) noexcept;  // noexcept: free and delete can then tail-call it
using CallocFn = void* (*)(size_t, size_t);
using ReallocFn = void* (*)(void*, size_t);
using AlignedFn = void* (*)(size_t, size_t);  // memalign, aligned_alloc
using PosixMemalignFn = int (*)(void**, size_t, size_t);

// The bootstrap arena: a 16-byte header holds each block's size (realloc copies out of it).
alignas(64) char g_arena[64 * 1024];
std::atomic<size_t> g_arena_used{0};
__thread bool t_resolving __attribute__((tls_model("initial-exec"))) = false;
bool g_malloc_is_ours = false;

bool in_arena(const void* p) {  // one compare: below the arena wraps around to a large distance
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(g_arena) < sizeof g_arena;
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
  periscope::agent::heap_filter_reserve(g_arena, g_arena + end);  // free's filter look finds it
  return g_arena + begin;
}

size_t arena_size(const void* p) {
  size_t size;
  std::memcpy(&size, static_cast<const char*>(p) - sizeof(size_t), sizeof size);
  return size;
}

void resolve();

// Until resolved, each pointer is a function that resolves (or, on the resolving thread, serves
// from the arena) and calls on.
void* boot_malloc(size_t size);
void boot_free(void* block) noexcept;
void* boot_calloc(size_t count, size_t size);
void* boot_realloc(void* block, size_t size);
void* boot_memalign(size_t alignment, size_t size);
int boot_posix_memalign(void** out, size_t alignment, size_t size);
void* boot_aligned_alloc(size_t alignment, size_t size);

struct Next {
  std::atomic<MallocFn> malloc{boot_malloc};
  std::atomic<FreeFn> free{boot_free};
  std::atomic<CallocFn> calloc{boot_calloc};
  std::atomic<ReallocFn> realloc{boot_realloc};
  std::atomic<AlignedFn> memalign{boot_memalign};
  std::atomic<PosixMemalignFn> posix_memalign{boot_posix_memalign};
  std::atomic<AlignedFn> aligned_alloc{boot_aligned_alloc};
  std::atomic<MallocFn> valloc{nullptr};   // null: memalign at the page size
  std::atomic<MallocFn> pvalloc{nullptr};
} g_next;

// When the process's operator new is not ours (the executable replaces it, or the agent was
// loaded late), the agent's own new and delete (bound to ours by -Bsymbolic-functions) must use
// the process's: a block may cross between agent code and libstdc++'s. Null: ours is the process's.
struct ForeignNew {
  void* (*plain)(size_t) = nullptr;
  void* (*aligned)(size_t, std::align_val_t) = nullptr;
  void (*free_plain)(void*) = nullptr;
  void (*free_aligned)(void*, std::align_val_t) = nullptr;
} g_foreign_new;

template <typename F>
F load(const std::atomic<F>& f) {
  return f.load(std::memory_order_relaxed);
}

// Whether `address`, as dlsym found it, is a definition. A non-PIE executable whose code takes a
// function's address has a "canonical PLT entry": the symbol is undefined there and its value is
// the executable's PLT stub, which dlsym(RTLD_DEFAULT) returns. The stub jumps through the
// executable's GOT, to the agent once the agent is the process's malloc: taken for the allocator
// after us, malloc would jump to itself for ever (the host hung at its first allocation).
bool is_definition(void* address) {
  Dl_info info{};
  void* entry = nullptr;  // the symbol's ElfW(Sym)
  return !::dladdr1(address, &info, &entry, RTLD_DL_SYMENT) || !entry ||
         static_cast<const ElfW(Sym)*>(entry)->st_shndx != SHN_UNDEF;
}

struct Lookup {
  const char* name;
  void* found;
};

// dl_iterate_phdr's order is the search order of the objects loaded at start.
int first_definition_in(dl_phdr_info* object, size_t, void* data) {
  auto* lookup = static_cast<Lookup*>(data);
  if (!object->dlpi_name || !*object->dlpi_name) return 0;  // the executable: the stub
  void* handle = ::dlopen(object->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return 0;  // the vDSO
  void* f = ::dlsym(handle, lookup->name);
  ::dlclose(handle);
  Dl_info where{};
  if (!f || !is_definition(f) || !::dladdr(f, &where) || !where.dli_fname ||
      std::strcmp(where.dli_fname, object->dlpi_name) != 0) {
    return 0;  // not defined in this object (found in one of its dependencies, or nowhere)
  }
  lookup->found = f;
  return 1;
}

// The function the process's calls to `name` reach: dlsym(RTLD_DEFAULT), past a canonical PLT entry.
void* process_definition(const char* name) {
  void* global = ::dlsym(RTLD_DEFAULT, name);
  if (!global || is_definition(global)) return global;
  Lookup lookup{name, nullptr};
  ::dl_iterate_phdr(first_definition_in, &lookup);
  return lookup.found;
}

// The process's definition when it is not ours, else the next one after us.
template <typename F>
F find_next(const char* name, F own) {
  void* global = process_definition(name);
  if (global && global != reinterpret_cast<void*>(own)) return reinterpret_cast<F>(global);
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

void resolve() {
  t_resolving = true;
  g_malloc_is_ours = process_definition("malloc") == reinterpret_cast<void*>(&malloc);
  auto next_malloc = find_next<MallocFn>("malloc", &malloc);
  auto next_free = find_next<FreeFn>("free", &free);
  auto next_calloc = find_next<CallocFn>("calloc", &calloc);
  auto next_realloc = find_next<ReallocFn>("realloc", &realloc);
  auto next_memalign = find_next<AlignedFn>("memalign", &memalign);
  auto next_posix_memalign = find_next<PosixMemalignFn>("posix_memalign", &posix_memalign);
  auto next_aligned_alloc = find_next<AlignedFn>("aligned_alloc", &aligned_alloc);
  g_next.valloc.store(find_next<MallocFn>("valloc", &valloc));
  g_next.pvalloc.store(find_next<MallocFn>("pvalloc", &pvalloc));
  if (!next_malloc || !next_free || !next_calloc || !next_realloc || !next_memalign || !next_posix_memalign) {
    static const char kMessage[] = "periscope: no allocator after the agent (malloc, free...); aborting\n";
    (void)!::write(2, kMessage, sizeof kMessage - 1);
    std::abort();
  }
  if (!next_aligned_alloc) next_aligned_alloc = next_memalign;
  void* global_new = process_definition("_Znwm");
  if (global_new && global_new != reinterpret_cast<void*>(static_cast<void* (*)(size_t)>(&::operator new))) {
    g_foreign_new.plain = reinterpret_cast<void* (*)(size_t)>(global_new);
    g_foreign_new.aligned = reinterpret_cast<void* (*)(size_t, std::align_val_t)>(process_definition("_ZnwmSt11align_val_t"));
    g_foreign_new.free_plain = reinterpret_cast<void (*)(void*)>(process_definition("_ZdlPv"));
    g_foreign_new.free_aligned =
        reinterpret_cast<void (*)(void*, std::align_val_t)>(process_definition("_ZdlPvSt11align_val_t"));
  }
  g_next.malloc.store(next_malloc);
  g_next.free.store(next_free);
  g_next.calloc.store(next_calloc);
  g_next.realloc.store(next_realloc);
  g_next.memalign.store(next_memalign);
  g_next.posix_memalign.store(next_posix_memalign);
  g_next.aligned_alloc.store(next_aligned_alloc);
  t_resolving = false;
}

// The resolving thread (dlsym may allocate) gets arena memory; others resolve.
bool booting() {
  if (t_resolving) return true;
  resolve();
  return false;
}

void* boot_malloc(size_t size) { return booting() ? arena_alloc(size, 16) : load(g_next.malloc)(size); }
void boot_free(void* block) noexcept {
  if (!booting()) load(g_next.free)(block);  // on the resolving thread: kept
}
void* boot_calloc(size_t count, size_t size) {
  size_t total;
  if (booting()) return __builtin_mul_overflow(count, size, &total) ? nullptr : arena_alloc(total, 16);  // zeroed
  return load(g_next.calloc)(count, size);
}
void* boot_realloc(void* block, size_t size) {
  if (!booting()) return load(g_next.realloc)(block, size);
  void* p = arena_alloc(size, 16);
  if (p && block && in_arena(block)) std::memcpy(p, block, arena_size(block) < size ? arena_size(block) : size);
  return p;
}
void* boot_memalign(size_t alignment, size_t size) {
  return booting() ? arena_alloc(size, alignment) : load(g_next.memalign)(alignment, size);
}
int boot_posix_memalign(void** out, size_t alignment, size_t size) {
  if (!booting()) return load(g_next.posix_memalign)(out, alignment, size);
  return (*out = arena_alloc(size, alignment)) ? 0 : ENOMEM;
}
void* boot_aligned_alloc(size_t alignment, size_t size) {
  return booting() ? arena_alloc(size, alignment) : load(g_next.aligned_alloc)(alignment, size);
}

__attribute__((constructor(101))) void resolve_at_load() {
  if (load(g_next.malloc) == boot_malloc) resolve();
}

void* page_aligned(size_t size, bool round_up) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return load(g_next.memalign)(page, round_up ? (size + page - 1) / page * page : size);
}

// operator new's loop (the standard's): the new_handler may free memory, else bad_alloc.
// `alignment` 0: plain new.
PERISCOPE_HEAP_PATH void* new_or_throw(size_t size, size_t alignment) {
  if (__builtin_expect(g_foreign_new.plain != nullptr, 0)) {
    if (alignment != 0 && g_foreign_new.aligned) return g_foreign_new.aligned(size, std::align_val_t{alignment});
    return g_foreign_new.plain(size);
  }
  if (size == 0) size = 1;
  for (;;) {
    void* p = alignment != 0 ? load(g_next.memalign)(alignment, size) : load(g_next.malloc)(size);
    if (p) {
      heap_note_alloc(p, size);
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

// A plain new that crossed the thread's distance.
PERISCOPE_HEAP_PATH __attribute__((noinline)) void* sampled_new(size_t size) {
  void* p = load(g_next.malloc)(size);
  if (!p) return new_or_throw(size, 0);
  heap_sample_slow(p, size);
  return p;
}

// Plain new when our operator new is the process's: malloc, and the loop only if it fails.
// malloc(0) gives a unique block (glibc, jemalloc, tcmalloc), as new(0) must; null: the loop.
// The slow cases are calls of their own, so that this one saves nothing but the size.
PERISCOPE_HEAP_PATH inline void* plain_new(size_t size) {
  if (__builtin_expect(g_foreign_new.plain != nullptr, 0)) return new_or_throw(size, 0);
  if (heap_count_crosses(size)) return sampled_new(size);
  void* p = load(g_next.malloc)(size);
  if (__builtin_expect(p != nullptr, 1)) return p;
  return new_or_throw(size, 0);
}

PERISCOPE_HEAP_PATH void* new_or_null(size_t size, size_t alignment) noexcept {
  try {
    return new_or_throw(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

// A free whose filter slot is set: a tracked block maybe, or one of the bootstrap arena (its
// slots are sticky, heap_filter_reserve), which no allocator knows and so is kept.
PERISCOPE_HEAP_PATH __attribute__((noinline)) void free_slow(void* block) noexcept {
  if (in_arena(block)) return;
  heap_untrack_slow(block);
  return load(g_next.free)(block);
}

// One filter byte, and a jump to the allocator's free (to free_slow where the byte is set).
__attribute__((always_inline)) inline void free_block(void* block) noexcept {
  if (heap_free_may_be_tracked(block)) return free_slow(block);
  return load(g_next.free)(block);
}

__attribute__((noinline)) void delete_foreign(void* block, size_t alignment) noexcept {
  if (alignment != 0 && g_foreign_new.free_aligned) return g_foreign_new.free_aligned(block, std::align_val_t{alignment});
  if (g_foreign_new.free_plain) return g_foreign_new.free_plain(block);
  free_block(block);
}

// Inlined into each operator delete, so that the common case is one function that jumps on. No
// arena check: operator new never hands out the bootstrap arena's blocks (only dlsym's malloc
// calls get them, and they are given back with free).
__attribute__((always_inline)) inline void delete_block(void* block, size_t alignment = 0) noexcept {
  if (__builtin_expect(g_foreign_new.plain != nullptr, 0)) return delete_foreign(block, alignment);
  return free_block(block);
}

}  // namespace

extern "C" {

// Each entry point counts first and, unless the allocation is to be sampled, tail-calls the next
// allocator (no frame of its own: a check or two and a jump over the call without the agent).
__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* malloc(size_t size) {
  if (!heap_count_crosses(size)) return load(g_next.malloc)(size);
  void* p = load(g_next.malloc)(size);
  heap_sample_slow(p, size);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void free(void* block) noexcept { return free_block(block); }

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) total = ~size_t{0};  // fails: counts as nothing
  if (!heap_count_crosses(total)) return load(g_next.calloc)(count, size);
  void* p = load(g_next.calloc)(count, size);
  heap_sample_slow(p, total);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* realloc(void* block, size_t size) {
  if (in_arena(block)) {
    void* p = malloc(size);
    if (p) std::memcpy(p, block, arena_size(block) < size ? arena_size(block) : size);
    return p;
  }
  if (block) heap_note_free(block);
  void* p = load(g_next.realloc)(block, size);
  if (p && size != 0) heap_note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* memalign(size_t alignment, size_t size) {
  if (!heap_count_crosses(size)) return load(g_next.memalign)(alignment, size);
  void* p = load(g_next.memalign)(alignment, size);
  heap_sample_slow(p, size);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!heap_count_crosses(size)) return load(g_next.posix_memalign)(out, alignment, size);
  const int r = load(g_next.posix_memalign)(out, alignment, size);
  heap_sample_slow(r == 0 ? *out : nullptr, size);
  return r;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* aligned_alloc(size_t alignment, size_t size) {
  if (!heap_count_crosses(size)) return load(g_next.aligned_alloc)(alignment, size);
  void* p = load(g_next.aligned_alloc)(alignment, size);
  heap_sample_slow(p, size);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* valloc(size_t size) {
  auto f = load(g_next.valloc);
  void* p = f ? f(size) : page_aligned(size, false);
  heap_note_alloc(p, size);
  return p;
}

__attribute__((visibility("default"))) PERISCOPE_HEAP_PATH void* pvalloc(size_t size) {
  auto f = load(g_next.pvalloc);
  void* p = f ? f(size) : page_aligned(size, true);
  heap_note_alloc(p, size);
  return p;
}

}  // extern "C"

PERISCOPE_HEAP_PATH void* operator new(std::size_t n) { return plain_new(n); }
PERISCOPE_HEAP_PATH void* operator new[](std::size_t n) { return plain_new(n); }
PERISCOPE_HEAP_PATH void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return new_or_null(n, 0); }
PERISCOPE_HEAP_PATH void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return new_or_null(n, 0); }
PERISCOPE_HEAP_PATH void* operator new(std::size_t n, std::align_val_t a) { return new_or_throw(n, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void* operator new[](std::size_t n, std::align_val_t a) { return new_or_throw(n, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_or_null(n, static_cast<size_t>(a));
}
PERISCOPE_HEAP_PATH void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_or_null(n, static_cast<size_t>(a));
}
PERISCOPE_HEAP_PATH void operator delete(void* p) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete[](void* p) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete(void* p, std::size_t) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete[](void* p, std::size_t) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete(void* p, std::align_val_t a) noexcept { delete_block(p, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void operator delete[](void* p, std::align_val_t a) noexcept { delete_block(p, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { delete_block(p, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void operator delete[](void* p, std::size_t, std::align_val_t a) noexcept { delete_block(p, static_cast<size_t>(a)); }
PERISCOPE_HEAP_PATH void operator delete(void* p, const std::nothrow_t&) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete[](void* p, const std::nothrow_t&) noexcept { delete_block(p); }
PERISCOPE_HEAP_PATH void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
  delete_block(p, static_cast<size_t>(a));
}
PERISCOPE_HEAP_PATH void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
  delete_block(p, static_cast<size_t>(a));
}

namespace periscope::agent {

namespace {

// One of malloc's family by name: the agent's function (`own`) or the allocator's after it.
void* allocation_function(const char* name, bool own) {
  if (load(g_next.malloc) == boot_malloc) resolve();
  struct Entry {
    const char* name;
    void* own;
    void* next;
  };
  const Entry functions[] = {
      {"malloc", reinterpret_cast<void*>(&malloc), reinterpret_cast<void*>(load(g_next.malloc))},
      {"free", reinterpret_cast<void*>(&free), reinterpret_cast<void*>(load(g_next.free))},
      {"calloc", reinterpret_cast<void*>(&calloc), reinterpret_cast<void*>(load(g_next.calloc))},
      {"realloc", reinterpret_cast<void*>(&realloc), reinterpret_cast<void*>(load(g_next.realloc))},
      {"memalign", reinterpret_cast<void*>(&memalign), reinterpret_cast<void*>(load(g_next.memalign))},
      {"posix_memalign", reinterpret_cast<void*>(&posix_memalign), reinterpret_cast<void*>(load(g_next.posix_memalign))},
      {"aligned_alloc", reinterpret_cast<void*>(&aligned_alloc), reinterpret_cast<void*>(load(g_next.aligned_alloc))},
      {"valloc", reinterpret_cast<void*>(&valloc), reinterpret_cast<void*>(load(g_next.valloc))},
      {"pvalloc", reinterpret_cast<void*>(&pvalloc), reinterpret_cast<void*>(load(g_next.pvalloc))}};
  for (const auto& e : functions) {
    if (std::strcmp(e.name, name) == 0) return own ? e.own : e.next;
  }
  return nullptr;
}

}  // namespace

void* own_allocation_function(const char* name) { return allocation_function(name, true); }

void* next_allocation_function(const char* name) { return allocation_function(name, false); }

std::string malloc_interposer_problem() {
  if (load(g_next.malloc) == boot_malloc) resolve();
  if (g_malloc_is_ours) return {};
  Dl_info info{};
  void* global = process_definition("malloc");
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

void* own_allocation_function(const char*) { return nullptr; }
void* next_allocation_function(const char*) { return nullptr; }

}  // namespace periscope::agent

#endif
