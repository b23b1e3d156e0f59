// The floor of any heap profiler that interposes the allocation functions (for bench/heap_cost.sh):
// malloc, free, calloc, realloc and C++'s new and delete, each passed on to glibc through a
// function pointer and nothing else, as libperiscope.so's interposer does when it samples nothing.
// LD_PRELOAD it into the same workload: what it costs is what interposing costs before any profiling.
#include <cstddef>
#include <new>

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* block);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* block, size_t size);
}

namespace {

// Globals, not constants: the call is indirect, as an interposer that finds the next allocator at
// run time must make it.
void* (*volatile g_malloc)(size_t) = __libc_malloc;
void (*volatile g_free)(void*) = __libc_free;
void* (*volatile g_calloc)(size_t, size_t) = __libc_calloc;
void* (*volatile g_realloc)(void*, size_t) = __libc_realloc;

void* new_or_throw(size_t size) {
  if (size == 0) size = 1;
  for (;;) {
    if (void* p = g_malloc(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) void* malloc(size_t size) { return g_malloc(size); }
__attribute__((visibility("default"))) void free(void* block) { g_free(block); }
__attribute__((visibility("default"))) void* calloc(size_t count, size_t size) { return g_calloc(count, size); }
__attribute__((visibility("default"))) void* realloc(void* block, size_t size) { return g_realloc(block, size); }
}

void* operator new(size_t size) { return new_or_throw(size); }
void* operator new[](size_t size) { return new_or_throw(size); }
void operator delete(void* block) noexcept { g_free(block); }
void operator delete[](void* block) noexcept { g_free(block); }
void operator delete(void* block, size_t) noexcept { g_free(block); }
void operator delete[](void* block, size_t) noexcept { g_free(block); }
