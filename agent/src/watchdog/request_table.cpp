#include "agent/src/watchdog/request_table.h"

#include "agent/src/fork_handling.h"

#include <cstring>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/src/watchdog/fast_clock.h"
#include "profiler/capture/sample_label.h"

namespace periscope::agent {

namespace {

std::atomic<RequestTable*> g_table{nullptr};
// Every table ever made (one per agent start), so a request can end on the one it began on.
constexpr size_t kMaxTables = 64;
std::atomic<RequestTable*> g_all_tables[kMaxTables];
std::mutex g_name_registration;

__attribute__((tls_model("initial-exec"))) thread_local size_t t_slot_hint = 0;
__attribute__((tls_model("initial-exec"))) thread_local pid_t t_tid = 0;

// A tiny per-thread cache from name pointer to index: names are usually string literals.
struct NameCacheEntry {  // 16 bytes: the agent's static TLS stays small (docs/inject.md)
  const char* pointer;
  uint32_t table_id;  // an index means nothing in another table (the id's low half)
  uint32_t index;
};
__attribute__((tls_model("initial-exec"))) thread_local NameCacheEntry t_name_cache[8];

size_t copy_name(char* out, const char* name) {
  size_t n = name ? ::strnlen(name, kRequestNameBytes - 1) : 0;
  if (n) std::memcpy(out, name, n);
  out[n] = '\0';
  return n;
}

// The slots and the per-thread blocks share one zeroed mapping: one mapping less for every fork
// of the host to copy and every exit to unmap.
struct TableMemory {
  RequestSlot* slots = nullptr;
  ThreadStatsBlock* blocks = nullptr;
};
TableMemory map_table(size_t slots, size_t blocks) {
  static_assert(sizeof(RequestSlot) % alignof(ThreadStatsBlock) == 0, "the blocks follow the slots");
  const size_t slot_bytes = slots * sizeof(RequestSlot);
  void* p = ::mmap(nullptr, slot_bytes + blocks * sizeof(ThreadStatsBlock), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return {};
  return {static_cast<RequestSlot*>(p), reinterpret_cast<ThreadStatsBlock*>(static_cast<char*>(p) + slot_bytes)};
}

// Single writer: a plain add, no lock prefix. Readers load the atomics.
void bump(std::atomic<uint64_t>& counter, uint64_t by) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// This thread's statistics block in the current table. Plain thread-local data (no guard on
// every access); a pthread key, set once per thread, gives the block back when the thread exits.
struct ThreadBlockHandle {
  uint64_t table_id;  // not the address: a table made later may live where an old one did
  ThreadStatsBlock* block;
};
__attribute__((tls_model("initial-exec"))) thread_local ThreadBlockHandle t_block{0, nullptr};
std::atomic<uint64_t> g_next_table_id{1};

void release_block(void* block) { static_cast<ThreadStatsBlock*>(block)->owned.store(false, std::memory_order_release); }

pthread_key_t block_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k{};
    ::pthread_key_create(&k, release_block);
    return k;
  }();
  return key;
}

// Bucket upper bounds in nanoseconds, so the hot path compares integers.
constexpr auto kBucketBoundsNs = [] {
  std::array<uint64_t, kDurationBucketsMs.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = static_cast<uint64_t>(kDurationBucketsMs[i] * 1e6);
  return ns;
}();

size_t bucket_for(uint64_t ns) {
  size_t i = 0;
  while (i < kBucketBoundsNs.size() && ns > kBucketBoundsNs[i]) ++i;
  return i;
}

// The requests this thread serves, innermost first, chained through RequestSlot::outer: its
// samples carry the innermost one's name (its index + 1, sample_label.h). Requests that ended out
// of order (a move-assignment begins the new one first) are unlinked; one that ended on another
// thread without detach() is skipped when it is next looked at.
__attribute__((tls_model("initial-exec"))) thread_local RequestSlot* t_serving = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_serving_sequence = 0;

uint64_t sequence_of(const RequestSlot& s) { return s.word.load(std::memory_order_acquire) >> 8; }

// `s`, if it is still request `sequence` and served by this thread, else the first of its outer
// requests that is (a few hops at most: slots never go away, a reused one fails the check).
RequestSlot* still_served(RequestSlot* s, uint64_t sequence) {
  for (int hops = 0; s && hops < 8; ++hops) {
    const uint64_t word = s->word.load(std::memory_order_acquire);
    const SlotState state = slot_state(word);
    if ((word >> 8) == sequence && (state == kActive || state == kReported) &&
        s->tid.load(std::memory_order_relaxed) == cached_tid()) {
      return s;
    }
    sequence = s->outer_sequence.load(std::memory_order_relaxed);
    s = s->outer.load(std::memory_order_relaxed);
  }
  return nullptr;
}

void serve_innermost(RequestSlot* s) {
  t_serving = s;
  t_serving_sequence = s ? sequence_of(*s) : 0;
  set_sample_label(s ? s->label.load(std::memory_order_relaxed) : 0);
}

// `s` is now the innermost request this thread serves.
void serve_on_this_thread(RequestSlot& s) {
  RequestSlot* outer = still_served(t_serving, t_serving_sequence);
  s.outer.store(outer, std::memory_order_relaxed);
  s.outer_sequence.store(outer ? sequence_of(*outer) : 0, std::memory_order_relaxed);
  serve_innermost(&s);
}

// `s` ends or leaves this thread: out of the chain, wherever it is in it.
void stop_serving_on_this_thread(RequestSlot& s) {
  const uint64_t sequence = sequence_of(s);
  if (t_serving == &s && t_serving_sequence == sequence) {
    return serve_innermost(still_served(s.outer.load(std::memory_order_relaxed),
                                       s.outer_sequence.load(std::memory_order_relaxed)));
  }
  RequestSlot* inner = still_served(t_serving, t_serving_sequence);
  RequestSlot* p = inner;
  for (int hops = 0; p && hops < 8; ++hops, p = p->outer.load(std::memory_order_relaxed)) {
    if (p->outer.load(std::memory_order_relaxed) == &s && p->outer_sequence.load(std::memory_order_relaxed) == sequence) {
      p->outer.store(s.outer.load(std::memory_order_relaxed), std::memory_order_relaxed);
      p->outer_sequence.store(s.outer_sequence.load(std::memory_order_relaxed), std::memory_order_relaxed);
      break;
    }
  }
  serve_innermost(inner);
}

}  // namespace

pid_t cached_tid() {
  if (t_tid == 0) t_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  return t_tid;
}

PERISCOPE_FORK_PATH void reset_cached_tid_in_fork_child() { t_tid = 0; }

PERISCOPE_FORK_PATH RequestTable* request_table() { return g_table.load(std::memory_order_acquire); }
PERISCOPE_FORK_PATH void set_request_table(RequestTable* table) {
  if (table) {
    for (auto& t : g_all_tables) {
      RequestTable* expected = nullptr;
      if (t.compare_exchange_strong(expected, table)) break;
    }
  }
  g_table.store(table, std::memory_order_release);
}

std::string request_name_of_label(uint32_t label) {
  if (label == 0) return {};
  const uint32_t tag = label >> 24;
  const size_t index = (label & 0xffffff) - 1;
  for (auto& t : g_all_tables) {
    const RequestTable* table = t.load(std::memory_order_acquire);
    if (!table || table->label_of(0) >> 24 != tag) continue;
    if (index > table->max_names()) return {};
    const NameStats& name = table->name_stats(index);
    return name.ready.load(std::memory_order_acquire) ? name.name : "";
  }
  return {};
}

void end_request(RequestSlot* slot) {
  RequestTable* current = g_table.load(std::memory_order_acquire);
  if (current && current->owns(slot)) return current->end(slot);
  for (auto& t : g_all_tables) {
    RequestTable* table = t.load(std::memory_order_acquire);
    if (table && table->owns(slot)) return table->end(slot);
  }
}

RequestTable::RequestTable(const RequestTableConfig& config)
    : capacity_(config.capacity),
      max_names_(config.max_names),
      default_threshold_ms_(config.default_threshold_ms),
      slots_(nullptr),
      names_(new NameStats[config.max_names + 1]),
      id_(g_next_table_id.fetch_add(1)),
      blocks_(nullptr) {
  const TableMemory memory = map_table(capacity_, kThreadBlocks);
  slots_ = memory.slots;
  blocks_ = memory.blocks;
  if (!slots_) capacity_ = 0;  // track nothing rather than fail the agent
  first_use_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (auto id = FdIdentity::of(first_use_fd_)) first_use_identity_ = *id;
  std::strcpy(names_[max_names_].name, "other");
  names_[max_names_].ready.store(true);
}

uint32_t RequestTable::index_of(const char* name) {
  if (!name) name = "";
  auto& cached = t_name_cache[(reinterpret_cast<uintptr_t>(name) >> 3) & 7];
  if (cached.table_id == static_cast<uint32_t>(id_) && cached.pointer == name &&
      std::strncmp(names_[cached.index].name, name, kRequestNameBytes - 1) == 0) {
    return cached.index;
  }
  char wanted[kRequestNameBytes];
  copy_name(wanted, name);
  uint32_t index = static_cast<uint32_t>(max_names_);  // "other" unless found or added
  size_t count = name_count_.load(std::memory_order_acquire);
  bool found = false;
  for (size_t i = 0; i < count; ++i) {
    if (std::strcmp(names_[i].name, wanted) == 0) {
      index = static_cast<uint32_t>(i);
      found = true;
      break;
    }
  }
  if (!found) {
    std::lock_guard lock(g_name_registration);  // once per new name
    count = name_count_.load(std::memory_order_acquire);
    for (size_t i = 0; i < count && !found; ++i) {
      if (std::strcmp(names_[i].name, wanted) == 0) index = static_cast<uint32_t>(i), found = true;
    }
    if (!found && count < max_names_) {
      std::memcpy(names_[count].name, wanted, sizeof wanted);
      names_[count].ready.store(true, std::memory_order_release);
      name_count_.store(count + 1, std::memory_order_release);
      index = static_cast<uint32_t>(count);
    }
  }
  cached = {name, static_cast<uint32_t>(id_), index};
  return index;
}

void RequestTable::set_threshold(const char* name, int64_t ms) {
  uint32_t i = index_of(name);
  if (i < max_names_) names_[i].threshold_ms.store(ms, std::memory_order_relaxed);
}

int64_t RequestTable::threshold_ms(uint32_t name_index) const {
  int64_t t = names_[name_index].threshold_ms.load(std::memory_order_relaxed);
  return t >= 0 ? t : default_threshold_ms_;
}

RequestSlot* RequestTable::begin(const char* name, uint64_t id) {
  const size_t start = t_slot_hint < capacity_ ? t_slot_hint : 0;  // the hint may be another table's
  for (size_t k = 0; k < capacity_; ++k) {
    size_t i = start + k < capacity_ ? start + k : start + k - capacity_;
    RequestSlot& s = slots_[i];
    uint64_t word = s.word.load(std::memory_order_relaxed);
    if (slot_state(word) != kFree) continue;
    uint64_t sequence = (word >> 8) + 1;
    if (!s.word.compare_exchange_strong(word, slot_word(sequence, kClaimed), std::memory_order_acquire)) continue;
    t_slot_hint = i;
    copy_name(s.name, name);
    const uint32_t name_index = index_of(name);
    s.name_index.store(name_index, std::memory_order_relaxed);
    s.label.store(label_of(name_index), std::memory_order_relaxed);
    serve_on_this_thread(s);
    s.id = id;
    s.tid.store(cached_tid(), std::memory_order_relaxed);
    s.start_ticks.store(now_ticks(), std::memory_order_relaxed);
    s.word.store(slot_word(sequence, kActive), std::memory_order_release);
    size_t hw = high_water_.load(std::memory_order_relaxed);
    while (i + 1 > hw && !high_water_.compare_exchange_weak(hw, i + 1, std::memory_order_release)) {
    }
    // The very first request of this table wakes the watchdog, unless the host took the number.
    if (hw == 0 && first_use_fd_ >= 0 && first_use_identity_.still_at(first_use_fd_)) {
      uint64_t one = 1;
      (void)!::write(first_use_fd_, &one, sizeof one);
    }
    return &s;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

ThreadStatsBlock* RequestTable::acquire_block() {
  for (size_t i = 0; blocks_ && i < kThreadBlocks; ++i) {
    bool expected = false;
    if (!blocks_[i].owned.load(std::memory_order_relaxed) &&
        blocks_[i].owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      return &blocks_[i];
    }
  }
  return nullptr;
}

void RequestTable::record(uint32_t name_index, uint64_t ns) {
  const size_t bucket = bucket_for(ns);
  if (t_block.table_id != id_) {  // first request of this thread on this table
    if (t_block.block) release_block(t_block.block);
    t_block.table_id = id_;
    t_block.block = acquire_block();
    ::pthread_setspecific(block_key(), t_block.block);
  }
  if (ThreadStatsBlock* b = t_block.block) {
    for (size_t i = 0; i < kNamesPerThreadBlock; ++i) {
      uint32_t n = b->name_plus1[i].load(std::memory_order_relaxed);
      if (n == 0) b->name_plus1[i].store(n = name_index + 1, std::memory_order_release);
      if (n != name_index + 1) continue;
      bump(b->counters[i].buckets[bucket], 1);
      bump(b->counters[i].sum_ns, ns);
      return;
    }
  }
  DurationCounters& shared = names_[name_index].shared;
  shared.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  shared.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

NameTotals RequestTable::totals(size_t name_index) const {
  NameTotals t;
  auto add = [&t](const DurationCounters& c) {
    t.sum_ns += c.sum_ns.load(std::memory_order_relaxed);
    for (size_t b = 0; b < kBuckets; ++b) t.buckets[b] += c.buckets[b].load(std::memory_order_relaxed);
  };
  add(names_[name_index].shared);
  for (size_t i = 0; blocks_ && i < kThreadBlocks; ++i) {
    for (size_t k = 0; k < kNamesPerThreadBlock; ++k) {
      if (blocks_[i].name_plus1[k].load(std::memory_order_acquire) == name_index + 1) add(blocks_[i].counters[k]);
    }
  }
  for (uint64_t n : t.buckets) t.requests += n;
  t.slow = names_[name_index].slow.load(std::memory_order_relaxed);
  return t;
}

void RequestTable::end(RequestSlot* s) {
  const uint64_t end = now_ticks();
  const uint64_t start = s->start_ticks.load(std::memory_order_relaxed);
  const uint64_t ns = static_cast<uint64_t>(ticks_to_ns(end - start));
  const uint32_t name_index = s->name_index.load(std::memory_order_relaxed);
  if (s->tid.load(std::memory_order_relaxed) == cached_tid()) stop_serving_on_this_thread(*s);
  record(name_index, ns);
  if (ns >= static_cast<uint64_t>(threshold_ms(name_index)) * 1000000u) {
    names_[name_index].slow.fetch_add(1, std::memory_order_relaxed);  // rare
  }
  const uint64_t word = s->word.load(std::memory_order_acquire);
  const uint64_t sequence = word >> 8;
  s->end_ticks.store(end, std::memory_order_relaxed);
  s->end_sequence.store(sequence, std::memory_order_relaxed);
  // Reported: the watchdog holds it and frees it after reading the end (hand-over).
  s->word.store(slot_word(sequence, slot_state(word) == kReported ? kEnded : kFree), std::memory_order_release);
}

void RequestTable::detach(RequestSlot* s) {
  if (s->tid.load(std::memory_order_relaxed) == cached_tid()) stop_serving_on_this_thread(*s);
  s->tid.store(0, std::memory_order_release);
}

void RequestTable::attach(RequestSlot* s) {
  if (s->tid.load(std::memory_order_relaxed) == cached_tid()) return;  // already here
  serve_on_this_thread(*s);
  s->tid.store(cached_tid(), std::memory_order_release);
}

}  // namespace periscope::agent
