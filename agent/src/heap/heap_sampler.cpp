#include "agent/src/heap/heap_sampler.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <dlfcn.h>
#include <link.h>
#include <mutex>
#include <new>
#include <pthread.h>
#include <unistd.h>
#include <unordered_map>
#include <libunwind.h>
#include <unwind.h>
#include <utility>

#include "agent/src/fork_handling.h"
#include "agent/src/heap/got_patch.h"
#include "agent/src/heap/malloc_interposer.h"

extern "C" char __start_periscope_heap_path[];  // the section's bounds, from the linker
extern "C" char __stop_periscope_heap_path[];

namespace periscope::agent {

std::atomic<bool> g_heap_sampling{false};
std::atomic<uint8_t> g_heap_filter[size_t{1} << kHeapFilterBits];
__thread HeapThreadCount t_heap_count __attribute__((tls_model("initial-exec"))) = {0, 0, nullptr, nullptr, 0};
std::atomic<uint64_t> g_heap_generation{1};
std::atomic<uint64_t> g_heap_sampling_generation{0};

namespace {

constexpr size_t kMaxDepth = 256;             // as the CPU profiler's stacks ("[cut at 256 frames]")
constexpr size_t kMaxStacks = 1 << 16;
constexpr size_t kMaxBlocks = size_t{1} << 22;

// Initial-exec TLS (`__thread`: no wrapper calls): a thread's distance to its next sample, its
// random state, and the guard that makes the profiler's own allocations pass through.
__thread uint64_t t_random __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_inside __attribute__((tls_model("initial-exec"))) = false;

struct Block {
  uint32_t stack;
  uint64_t size;
  double weight;  // how many blocks of its size this sample stands for
};

// Stacks are looked up by a view of the caller's array: a stack seen before costs no allocation.
struct StackView {
  const uint64_t* pcs;
  size_t depth;
};

struct StackHash {
  using is_transparent = void;
  size_t operator()(StackView v) const {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < v.depth; ++i) h = (h ^ v.pcs[i]) * 1099511628211ull;
    return h;
  }
  size_t operator()(const std::vector<uint64_t>& v) const { return (*this)(StackView{v.data(), v.size()}); }
};

struct StackEqual {
  using is_transparent = void;
  static bool same(StackView a, StackView b) {
    return a.depth == b.depth && std::equal(a.pcs, a.pcs + a.depth, b.pcs);
  }
  bool operator()(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) const { return a == b; }
  bool operator()(StackView a, const std::vector<uint64_t>& b) const { return same(a, {b.data(), b.size()}); }
  bool operator()(const std::vector<uint64_t>& a, StackView b) const { return same({a.data(), a.size()}, b); }
};

struct Table {
  std::unordered_map<std::vector<uint64_t>, uint32_t, StackHash, StackEqual> index;
  std::vector<HeapStackCounts> stacks;
  std::unordered_map<uintptr_t, Block> blocks;
};

// Never taken twice on one thread: whoever holds it is inside HeapPassThrough, so what it (or a
// signal handler on its thread) allocates or frees passes through without looking.
std::mutex g_lock;
Table* g_table = nullptr;  // made at the first start, never freed (the interposer outlives us)
// Whether a table was ever made: until then a free whose filter slot is set (one the bootstrap
// arena shares) has nothing to look up, and takes no lock.
std::atomic<bool> g_has_table{false};
std::atomic<uint64_t> g_rate{kDefaultHeapRate};
std::atomic<uint64_t> g_samples{0};
std::atomic<uint64_t> g_dropped{0};
double g_inuse_bytes = 0;  // under g_lock
double g_alloc_bytes = 0;
timespec g_started{};
// In a fork child, libunwind's global locks (its caches, its memory pool) may have been held by a
// parent thread at the fork and stay locked forever: stacks then come from libgcc's unwinder,
// which finds unwind tables through glibc's _dl_find_object (no lock), at ~400 ns a frame.
bool g_in_fork_child = false;
// The threads that count (HeapThreadCount's list; under g_threads_lock, below). Beside
// g_in_fork_child: a fork child writes both, and one page copied is cheaper than two.
HeapThreadCount* g_threads = nullptr;

uint64_t next_random() {
  uint64_t x = t_random;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t_random = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// Exponential with mean `rate`: the distance to the next sampled byte of a Poisson process.
int64_t draw_distance() {
  const double u = (static_cast<double>(next_random() >> 11) + 1.0) / 9007199254740993.0;  // (0, 1]
  const double d = -std::log(u) * static_cast<double>(g_rate.load(std::memory_order_relaxed));
  return d >= 9e18 ? INT64_MAX : static_cast<int64_t>(d);
}

// Guards the list of the threads that count (g_threads), so that a start can reach their distances.
std::mutex g_threads_lock;
pthread_key_t g_thread_exit_key;
bool g_thread_exit_key_made = false;
pthread_once_t g_thread_exit_key_once = PTHREAD_ONCE_INIT;

// A thread's exit (its pthread key's destructor; its TLS is still there): it leaves the list for
// good, before glibc frees or reuses its TLS.
void leave_thread_list(void*) {
  std::lock_guard lock(g_threads_lock);
  HeapThreadCount& self = t_heap_count;
  if (self.listed != 1) return;
  if (self.prev) self.prev->next = self.next;
  else g_threads = self.next;
  if (self.next) self.next->prev = self.prev;
  self.listed = 2;
}

// At the thread's first crossing (inside the allocator's caller: HeapPassThrough is on). A thread
// whose key cannot be set (keys exhausted) is not listed: a start does not reach its distance,
// which then runs out at the rate it was drawn for (1 MiB while off). The lock is only tried:
// inside malloc, never wait (a fork child's handler registered before ours may allocate while
// the lock is still the dead parent thread's); the next crossing tries again.
void join_thread_list() {
  HeapThreadCount& self = t_heap_count;
  // Made at the first crossing of any thread, which may come before the agent's constructors.
  (void)::pthread_once(&g_thread_exit_key_once, [] {
    g_thread_exit_key_made = ::pthread_key_create(&g_thread_exit_key, leave_thread_list) == 0;
  });
  if (!g_thread_exit_key_made || ::pthread_setspecific(g_thread_exit_key, &self) != 0) {
    self.listed = 2;
    return;
  }
  std::unique_lock lock(g_threads_lock, std::try_to_lock);
  if (!lock.owns_lock()) return;
  for (HeapThreadCount* t = g_threads; t; t = t->next) {
    if (t == &self) return;  // listed already (a lost destructor value): a second link is a cycle
  }
  self.prev = nullptr;
  self.next = g_threads;
  if (g_threads) g_threads->prev = &self;
  g_threads = &self;
  self.listed = 1;
}

// After a start (agent's thread): every listed thread's distance to 0, so that its next
// allocation draws anew. A thread's own count is a plain subtraction in memory, which may write
// back its old distance over our 0 (a lost update): until each thread has drawn for this start or
// still has a distance of at most 0, store again (~40 ms at most).
void restart_thread_counts(uint64_t generation) {
  constexpr int kMaxListed = 1 << 20;  // more than any process's threads: a bound, should the list be broken
  for (int pass = 0; pass < 200; ++pass) {
    bool settled = true;
    {
      std::lock_guard lock(g_threads_lock);
      int seen = 0;
      for (HeapThreadCount* t = g_threads; t && seen < kMaxListed; t = t->next, ++seen) {
        if (__atomic_load_n(&t->generation, __ATOMIC_RELAXED) == generation) continue;
        if (__atomic_load_n(&t->bytes_left, __ATOMIC_RELAXED) <= 0) continue;
        __atomic_store_n(&t->bytes_left, 0, __ATOMIC_RELAXED);
        settled = false;
      }
    }
    if (settled) return;
    const timespec pause{0, 200 * 1000};
    ::nanosleep(&pause, nullptr);
  }
}

void seed_thread(uint64_t generation) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t_random = (static_cast<uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ull) ^
             (reinterpret_cast<uintptr_t>(&t_random) << 7) ^ static_cast<uint64_t>(gettid());
  if (t_random == 0) t_random = 0x853c49e6748fea9bull;
  __atomic_store_n(&t_heap_count.generation, generation, __ATOMIC_RELAXED);
  t_heap_count.bytes_left = draw_distance();
}


// The sampled allocation's stack, its call site first. libunwind's unw_backtrace: it keeps, per
// thread, how each return address's frame is laid out, and walks a known stack in ~10 ns a frame
// (unw_step, or libgcc's _Unwind_Backtrace, interpret the unwind tables at every frame: ~400 ns).
// Its per-thread cache is mmap'ed; anything it allocates passes through (HeapPassThrough).
_Unwind_Reason_Code add_frame(_Unwind_Context* context, void* data) {
  auto* walk = static_cast<std::pair<void**, int>*>(data);
  if (walk->second == static_cast<int>(kMaxDepth + 8)) return _URC_END_OF_STACK;
  const uintptr_t pc = _Unwind_GetIP(context);
  if (pc == 0) return _URC_END_OF_STACK;
  walk->first[walk->second++] = reinterpret_cast<void*>(pc);
  return _URC_NO_REASON;
}

PERISCOPE_HEAP_PATH int backtrace_of_this_thread(void** frames) {
  if (!g_in_fork_child) return unw_backtrace(frames, static_cast<int>(kMaxDepth + 8));
  std::pair<void**, int> walk{frames, 0};
  _Unwind_Backtrace(add_frame, &walk);
  return walk.second;
}

bool on_heap_path(void* pc) {
  const auto p = reinterpret_cast<uintptr_t>(pc);
  return p >= reinterpret_cast<uintptr_t>(__start_periscope_heap_path) &&
         p < reinterpret_cast<uintptr_t>(__stop_periscope_heap_path);
}

PERISCOPE_HEAP_PATH size_t allocation_stack(uint64_t* pcs) {
  void* frames[kMaxDepth + 8];  // room for our own frames above the caller's
  const int got = backtrace_of_this_thread(frames);
  size_t first = 0;
  while (first < static_cast<size_t>(got) && on_heap_path(frames[first])) ++first;  // not the caller's
  size_t n = 0;
  for (size_t i = first; i < static_cast<size_t>(got) && n < kMaxDepth; ++i) {
    pcs[n++] = reinterpret_cast<uintptr_t>(frames[i]);
  }
  if (n > 0) pcs[0] -= 1;  // a return address: its call instruction names the line
  if (static_cast<size_t>(got) - first > kMaxDepth) pcs[n - 1] = 0;  // cut
  return n;
}

void forget(Table& table, std::unordered_map<uintptr_t, Block>::iterator it) {
  HeapStackCounts& s = table.stacks[it->second.stack];
  s.inuse_objects -= it->second.weight;
  s.inuse_bytes -= it->second.weight * static_cast<double>(it->second.size);
  g_inuse_bytes -= it->second.weight * static_cast<double>(it->second.size);
  auto& slot = g_heap_filter[heap_filter_slot(reinterpret_cast<void*>(it->first))];
  if (slot.load(std::memory_order_relaxed) != 255) slot.fetch_sub(1, std::memory_order_relaxed);  // 255: sticky
  table.blocks.erase(it);
}

PERISCOPE_HEAP_PATH void record_or_throw(void* block, size_t size) {
  uint64_t pcs[kMaxDepth];
  const size_t depth = allocation_stack(pcs);
  const double rate = static_cast<double>(g_rate.load(std::memory_order_relaxed));
  const double bytes = size > 0 ? static_cast<double>(size) : 1.0;
  const double weight = 1.0 / (1.0 - std::exp(-bytes / rate));
  g_samples.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(g_lock);
  Table& table = *g_table;
  const auto address = reinterpret_cast<uintptr_t>(block);
  if (auto stale = table.blocks.find(address); stale != table.blocks.end()) forget(table, stale);  // freed unseen
  auto found = table.index.find(StackView{pcs, depth});
  if (found == table.index.end()) {
    std::vector<uint64_t> key(pcs, pcs + depth);
    if (table.stacks.size() >= kMaxStacks || table.blocks.size() >= kMaxBlocks) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    found = table.index.emplace(key, static_cast<uint32_t>(table.stacks.size())).first;
    table.stacks.push_back(HeapStackCounts{std::move(key)});
  } else if (table.blocks.size() >= kMaxBlocks) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  HeapStackCounts& s = table.stacks[found->second];
  s.alloc_objects += weight;
  s.alloc_bytes += weight * static_cast<double>(size);
  s.inuse_objects += weight;
  s.inuse_bytes += weight * static_cast<double>(size);
  g_inuse_bytes += weight * static_cast<double>(size);
  g_alloc_bytes += weight * static_cast<double>(size);
  table.blocks.emplace(address, Block{found->second, size, weight});
  auto& slot = g_heap_filter[heap_filter_slot(block)];
  if (slot.load(std::memory_order_relaxed) != 255) slot.fetch_add(1, std::memory_order_relaxed);
}

// Out of memory while recording (a host at its limit): the sample is dropped, the allocation
// stands. Nothing may leave malloc by exception.
PERISCOPE_HEAP_PATH void record(void* block, size_t size) noexcept {
  try {
    record_or_throw(block, size);
  } catch (...) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

// The bootstrap arena's used part (heap_filter_reserve): its slots stay 255 through clears.
std::atomic<uintptr_t> g_reserved_begin{0};
std::atomic<uintptr_t> g_reserved_end{0};

// Whether the filter slot is one of the bootstrap arena's (never zeroed: its blocks' frees must
// always meet the slow path).
bool is_reserved_slot(size_t slot) noexcept {
  const uintptr_t begin = g_reserved_begin.load(std::memory_order_relaxed);
  const uintptr_t end = g_reserved_end.load(std::memory_order_relaxed);
  if (begin == end) return false;
  const size_t first = heap_filter_slot(reinterpret_cast<void*>(begin));
  const size_t count = ((end - 1) >> kHeapFilterGranuleBits) - (begin >> kHeapFilterGranuleBits) + 1;
  return ((slot - first) & ((size_t{1} << kHeapFilterBits) - 1)) < count;
}

void mark_reserved() noexcept {
  const uintptr_t begin = g_reserved_begin.load(std::memory_order_relaxed);
  const uintptr_t end = g_reserved_end.load(std::memory_order_relaxed);
  for (uintptr_t a = begin & ~((uintptr_t{1} << kHeapFilterGranuleBits) - 1); a < end; a += uintptr_t{1} << kHeapFilterGranuleBits) {
    g_heap_filter[heap_filter_slot(reinterpret_cast<void*>(a))].store(255, std::memory_order_relaxed);
  }
}

void clear_table_locked() {
  // Only the slots of tracked blocks: the rest of the filter was never written, and stays the
  // kernel's one shared zero page (a whole-filter store would make it 256 KiB of private pages
  // that every free then misses in the cache and the TLB).
  for (const auto& [address, block] : g_table->blocks) {
    const size_t slot = heap_filter_slot(reinterpret_cast<void*>(address));
    if (!is_reserved_slot(slot)) g_heap_filter[slot].store(0, std::memory_order_relaxed);
  }
  g_table->blocks.clear();
  g_table->index.clear();
  g_table->stacks.clear();
  g_inuse_bytes = 0;
  g_alloc_bytes = 0;
  g_samples = 0;
  g_dropped = 0;
}

// The fork child's only thread. No prepare handler: taking our lock before fork would order it
// before glibc's own fork locks (NSS, stdio), which threads that allocate while holding them take
// first. So the lock may be copied held, by a thread that was changing the table: the child then
// makes the lock anew and, if it was held, starts from an empty table (the half-changed one is
// left alone). Registered at load, before the agent's handler (child handlers run in the order
// they were registered), which starts a thread and so allocates.
PERISCOPE_FORK_PATH void reset_in_child() {
  // The other threads are gone (their TLS may be unmapped or reused): the list is this one.
  (void)reset_if_held_in_fork_child(g_threads_lock);
  HeapThreadCount* const only = t_heap_count.listed == 1 ? &t_heap_count : nullptr;
  if (g_threads != only) g_threads = only;
  if (only && (only->prev || only->next)) only->prev = only->next = nullptr;
  const bool held = reset_if_held_in_fork_child(g_lock);
  g_in_fork_child = true;
  if (held && g_table) {
    HeapPassThrough pass;
    std::lock_guard lock(g_lock);
    // The old table may be inconsistent: leaked on purpose. The filter's counts were its blocks':
    // zeroed where set (a read of the rest is the zero page's).
    for (size_t slot = 0; slot < (size_t{1} << kHeapFilterBits); ++slot) {
      if (g_heap_filter[slot].load(std::memory_order_relaxed) != 0 && !is_reserved_slot(slot)) {
        g_heap_filter[slot].store(0, std::memory_order_relaxed);
      }
    }
    g_table = new (std::nothrow) Table;
    if (!g_table) {
      g_heap_sampling_generation.store(0);
      g_heap_sampling.store(false);
      return;
    }
    clear_table_locked();
  }
}

__attribute__((constructor(101))) void register_fork_handlers() { pthread_atfork(nullptr, nullptr, reset_in_child); }

}  // namespace

void heap_filter_reserve(const void* begin, const void* end) noexcept {
  // Only ever grows (the arena is one range, used from its start): a racing smaller end is kept out.
  g_reserved_begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_relaxed);
  uintptr_t old_end = g_reserved_end.load(std::memory_order_relaxed);
  while (old_end < reinterpret_cast<uintptr_t>(end) &&
         !g_reserved_end.compare_exchange_weak(old_end, reinterpret_cast<uintptr_t>(end), std::memory_order_relaxed)) {
  }
  mark_reserved();
}

HeapPassThrough::HeapPassThrough() : was_(t_inside) {
  t_inside = true;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

HeapPassThrough::~HeapPassThrough() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_inside = was_;
}

PERISCOPE_HEAP_PATH void heap_sample_slow(void* block, size_t size) noexcept {
  const int64_t n = static_cast<int64_t>(size & (~size_t{0} >> 1));
  if (t_inside) {  // the profiler's own allocation: not counted
    t_heap_count.bytes_left += n;
    return;
  }
  HeapPassThrough pass;
  if (t_heap_count.listed == 0) join_thread_list();
  const uint64_t generation = g_heap_sampling_generation.load();
  if (generation == 0) {  // off: a distance never crossed, unless a start came meanwhile
    t_heap_count.bytes_left = kHeapCountWhileOff;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (g_heap_sampling_generation.load() != 0) t_heap_count.bytes_left = 0;  // its 0 may have come before ours
    return;
  }
  if (t_heap_count.generation != generation) {  // a new thread, or a new start
    seed_thread(generation);
    if (t_heap_count.bytes_left > n) {
      t_heap_count.bytes_left -= n;
      return;
    }
  }
  t_heap_count.bytes_left = draw_distance();
  if (block) record(block, size);
}

void heap_untrack_slow(void* block) noexcept {
  if (t_inside || !block || !g_has_table.load(std::memory_order_relaxed)) return;
  const auto address = reinterpret_cast<uintptr_t>(block);
  HeapPassThrough pass;
  std::lock_guard lock(g_lock);
  if (!g_table) return;  // a fork child that could not make its table anew
  if (auto it = g_table->blocks.find(address); it != g_table->blocks.end()) forget(*g_table, it);
}

namespace {

std::atomic<bool> g_patching{false};  // the agent was not first: modules' GOT entries point at it
std::atomic<bool> g_bypassed{false};  // never on yet: modules' GOT entries point past the agent
std::atomic<bool> g_ever_started{false};  // sticky: blocks sampled then may be freed any time later

// The bypass's entries: calls only, and only those that held the other side's function (or a
// lazy stub), so that undoing it touches nothing else (a module bound to another allocator by
// RTLD_DEEPBIND, a function address some code kept).
GotPatchScope bypass_scope(void* (*held)(const char*)) {
  GotPatchScope scope;
  scope.with_libc = false;
  scope.calls_only = true;
  scope.only_where = held;
  return scope;
}

// Points what is new since the last time (modules loaded since) at the agent. Agent's thread.
std::string patch_modules(std::string* note) {
  const GotPatchResult r = patch_allocation_got(own_allocation_function);
  if (!g_patching.load() && r.entries == 0) {
    return malloc_interposer_problem() + (r.error.empty() ? "" : " (patching the modules' GOT: " + r.error + ")");
  }
  g_patching.store(true);
  if (note && r.entries > 0) {
    *note = "the agent was not first in this process: " + std::to_string(r.entries) + " allocation entries of " +
            std::to_string(r.modules) + " modules now point at it (an allocator's calls to itself stay unseen)";
  }
  return {};
}

}  // namespace

std::string heap_sampling_unavailable() {
  if (g_patching.load()) return {};
  std::string problem = malloc_interposer_problem();
  if (!problem.empty() && own_allocation_function("malloc")) return {};  // patchable at start
  return problem;
}

void bypass_heap_interposer() {
  // Once per process (a fork child, an agent started again: done already), and never after a
  // start: blocks sampled then may still be freed, and their frees must reach the agent.
  if (g_bypassed.load() || g_patching.load() || g_heap_sampling.load() || g_ever_started.load()) return;
  if (!malloc_interposer_problem().empty() || !own_allocation_function("malloc")) return;
  HeapPassThrough pass;
  if (patch_allocation_got(next_allocation_function, bypass_scope(own_allocation_function)).entries > 0) {
    g_bypassed.store(true);
  }
}

void refresh_heap_patches() {
  if (g_patching.load()) (void)patch_modules(nullptr);
}

std::string start_heap_sampling(uint64_t rate, std::string* note) {
  if (!malloc_interposer_problem().empty()) {
    if (!own_allocation_function("malloc")) return malloc_interposer_problem();  // a sanitizer build
    if (auto err = patch_modules(note); !err.empty()) return err;
  }
  if (rate == 0) return "the sampling rate must be at least 1 byte";
  HeapPassThrough pass;
  g_ever_started.store(true);
  if (g_bypassed.exchange(false)) (void)patch_allocation_got(own_allocation_function, bypass_scope(next_allocation_function));
  if (g_heap_sampling.load()) {
    if (rate == g_rate.load()) return {};
    return "heap profiling is on at " + std::to_string(g_rate.load()) + " bytes; stop it first to change the rate";
  }
  static std::once_flag once;
  std::call_once(once, [] {
    uint64_t warm[kMaxDepth];
    (void)allocation_stack(warm);  // the unwinder's first use, here rather than in a host's malloc
  });
  {
    std::lock_guard lock(g_lock);
    // Made at the first start, never freed (the interposer outlives us); anew in a fork child
    // that could not make its own.
    if (!g_table) g_table = new Table;
    g_has_table.store(true);
    clear_table_locked();
    g_rate = rate;
    g_heap_generation.fetch_add(1);
    clock_gettime(CLOCK_MONOTONIC, &g_started);
  }
  g_heap_sampling.store(true);
  g_heap_sampling_generation.store(g_heap_generation.load());
  restart_thread_counts(g_heap_generation.load());
  return {};
}

void stop_heap_sampling() {
  g_heap_sampling_generation.store(0);
  g_heap_sampling.store(false);
}

HeapState heap_state() {
  HeapState s;
  s.on = g_heap_sampling.load();
  if (!g_table) return s;
  HeapPassThrough pass;
  std::lock_guard lock(g_lock);
  s.rate = g_rate.load();
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  s.seconds = static_cast<double>(now.tv_sec - g_started.tv_sec) + static_cast<double>(now.tv_nsec - g_started.tv_nsec) / 1e9;
  s.samples = g_samples.load();
  s.dropped = g_dropped.load();
  s.tracked = g_table->blocks.size();
  s.inuse_bytes = g_inuse_bytes;
  s.alloc_bytes = g_alloc_bytes;
  return s;
}

std::vector<HeapStackCounts> heap_snapshot(HeapState* state) {
  *state = heap_state();
  if (!g_table) return {};
  HeapPassThrough pass;
  std::lock_guard lock(g_lock);
  return g_table->stacks;
}

}  // namespace periscope::agent
