// Sampled heap profiling: which stacks allocated how much, and which of it is still in use.
//
// Allocations are sampled by bytes, as Go and tcmalloc do: each thread counts down a distance
// drawn from an exponential distribution of mean `rate` bytes, and the allocation that crosses it
// is sampled with its stack. A sampled block of size s stands for 1 / (1 - exp(-s/rate)) blocks of
// its size, which makes every estimate unbiased. Sampled blocks are tracked until freed.
//
// Threading: heap_note_alloc/heap_note_free run on host threads inside malloc and free (from the
// interposer, malloc_interposer.cpp). They never allocate through the profiler (a thread-local
// guard makes the allocations of its own bookkeeping pass straight through), take one mutex only
// when an allocation is sampled or a freed block may be a sampled one, and are not called from
// signal handlers of ours. Everything else runs on the agent's thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace periscope::agent {

constexpr uint64_t kDefaultHeapRate = 512 * 1024;  // bytes between samples, on average (Go's)

// The interposer's fast paths (inline: they run on every allocation and free). An allocation
// counts its bytes against the thread's distance, whether sampling is on or not, and goes to the
// slow path only when it crosses it; a free looks for its block only when the block's filter slot
// is not empty.
extern std::atomic<bool> g_heap_sampling;
// Tracked blocks per 256-byte granule of the address space, 256 MiB of it wrapping around (counts
// sticky at 255). Indexed by address, not by a hash: frees near each other in the heap read bytes
// near each other in the filter, and the pages of it never written are all the kernel's one zero
// page, so a free's look costs a cache hit. A 6 GiB heap's 12,000 tracked blocks (at 512 KiB)
// fill ~1.2% of it; its resident size is at most 1 MiB.
extern std::atomic<uint8_t> g_heap_filter[];
constexpr unsigned kHeapFilterBits = 20;
constexpr unsigned kHeapFilterGranuleBits = 8;
// A thread's distance to its next sample, and the start it was drawn for. While sampling is off a
// thread that crosses its distance gets a long one (kHeapCountWhileOff, 1 MiB: one slow path per
// MiB allocated, which looks whether a start came), so an allocation is one subtraction either
// way, and reads no global. A start makes every counting thread's distance 0
// (restart_thread_counts in heap_sampler.cpp), which sends its next allocation to the slow path,
// where it draws anew at the new rate; a thread the start could not reach draws within 1 MiB. For that, the threads that
// count are in a list of these (prev/next, under the sampler's thread lock), joined at a thread's
// first crossing (a new thread's distance is 0) and left at its exit.
struct HeapThreadCount {
  int64_t bytes_left;   // its thread's; a start (another thread) stores 0 into it
  uint64_t generation;  // the start its distance was drawn for; read by a start
  HeapThreadCount* prev;
  HeapThreadCount* next;
  uint8_t listed;  // 0: not yet; 1: in the list; 2: left it (the thread is exiting)
};
constexpr int64_t kHeapCountWhileOff = int64_t{1} << 20;
extern __thread HeapThreadCount t_heap_count __attribute__((tls_model("initial-exec")));
extern std::atomic<uint64_t> g_heap_generation;
extern std::atomic<uint64_t> g_heap_sampling_generation;  // g_heap_generation while on, else 0

inline size_t heap_filter_slot(const void* block) {
  return static_cast<size_t>(reinterpret_cast<uintptr_t>(block) >> kHeapFilterGranuleBits) &
         ((size_t{1} << kHeapFilterBits) - 1);
}

// The functions a sampled allocation's stack passes through from the host's call to the unwinder
// (the interposer's entry points, the sampler's slow path) live in one section: the stack starts
// at the first frame outside it, so the agent's own allocations keep their agent frames.
#define PERISCOPE_HEAP_PATH __attribute__((section("periscope_heap_path")))

PERISCOPE_HEAP_PATH void heap_sample_slow(void* block, size_t size) noexcept;  // the thread's distance was crossed
void heap_untrack_slow(void* block) noexcept;              // the block may be a tracked one

// An allocation of `size`, counted against the thread's distance: true when it crosses it, and
// heap_sample_slow must then be told of the block. Counting before the allocator's call lets the
// interposer tail-call it. A size beyond INT64_MAX (no allocator gives it) never crosses.
inline bool heap_count_crosses(size_t size) {
  const int64_t left = t_heap_count.bytes_left - static_cast<int64_t>(size);
  t_heap_count.bytes_left = left;
  return __builtin_expect(left < 0, 0);
}

// An allocation seen after the allocator's call (calloc, realloc, operator new's slow loop).
inline void heap_note_alloc(void* block, size_t size) {
  if (heap_count_crosses(size)) heap_sample_slow(block, size);
}

// Marks the interposer's bootstrap arena ([begin, end), handed out before the allocator was
// found) sticky in the filter, so that a free's one filter look also sends the arena's blocks to
// its slow path, where they are kept (no allocator knows them). Kept through every clear.
void heap_filter_reserve(const void* begin, const void* end) noexcept;

// A free (null included): one byte of the filter, which is all zero (the zero page) until a block
// is tracked.
inline bool heap_free_may_be_tracked(const void* block) {
  return __builtin_expect(g_heap_filter[heap_filter_slot(block)].load(std::memory_order_relaxed) != 0, 0);
}
inline void heap_note_free(void* block) {
  if (__builtin_expect(g_heap_filter[heap_filter_slot(block)].load(std::memory_order_relaxed) != 0, 0)) {
    heap_untrack_slow(block);
  }
}

// Marks the profiler's own work on a thread (its bookkeeping allocates through the same
// functions): what it allocates and frees inside is neither sampled nor looked up. Nests.
class HeapPassThrough {
 public:
  HeapPassThrough();
  ~HeapPassThrough();
  HeapPassThrough(const HeapPassThrough&) = delete;
  HeapPassThrough& operator=(const HeapPassThrough&) = delete;

 private:
  bool was_;
};

// Starts sampling at `rate` bytes (a fresh picture: what was tracked before is forgotten).
// When the process's malloc is not the agent's (an injected agent, an allocator ahead of it), the
// loaded modules' GOT entries for malloc's family are pointed at the agent first (got_patch.h) and
// *note says so. Returns why not (a sanitizer build; nothing to patch). Already on at the same
// rate: nothing changes.
[[nodiscard]] std::string start_heap_sampling(uint64_t rate, std::string* note = nullptr);
// While heap profiling has never been on, the agent is not in the host's allocation calls: the
// modules loaded at the agent's start (but libc's, see got_patch.h) get their PLT entries for
// malloc's family pointed past the agent, at the allocator's functions (only calls: an address
// code takes stays the agent's). The first start points exactly those back, for good. Modules
// loaded later call through the agent as before. Once per process (not in a fork child, nor
// after a start); nothing when the process's malloc is not the agent's. Not handled: a preloaded
// dlsym interposer that allocates inside its hook while ours resolves gets bootstrap-arena
// blocks, which it might give to a bypassed free.
void bypass_heap_interposer();
// With patched GOT entries: patches the modules loaded since (before a profile is read).
void refresh_heap_patches();
// Stops sampling new allocations; what is tracked stays until freed, and can still be read.
void stop_heap_sampling();
// Why heap sampling cannot work in this process, or empty when it can (or can by patching).
std::string heap_sampling_unavailable();

// Estimated counts of one allocating stack. `pcs`: innermost first, the allocation's call site
// first (a return address minus one), a 0 where the stack was cut.
struct HeapStackCounts {
  std::vector<uint64_t> pcs;
  double alloc_objects = 0;
  double alloc_bytes = 0;
  double inuse_objects = 0;
  double inuse_bytes = 0;
};

struct HeapState {
  bool on = false;
  uint64_t rate = 0;           // of the current (or last) sampling
  double seconds = 0;          // since it started
  uint64_t samples = 0;        // allocations sampled
  uint64_t tracked = 0;        // sampled blocks not yet freed
  uint64_t dropped = 0;        // samples not kept (table full)
  double inuse_bytes = 0;      // estimates, all stacks
  double alloc_bytes = 0;
};

HeapState heap_state();
// The whole table (agent's thread; copies under the lock).
std::vector<HeapStackCounts> heap_snapshot(HeapState* state);

}  // namespace periscope::agent
