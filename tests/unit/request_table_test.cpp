// The watchdog's request table driven directly: slots, statistics, bounded names, hand-over.
#include "agent/src/watchdog/request_table.h"

#include <gtest/gtest.h>
#include <functional>
#include <thread>

#include "agent/src/watchdog/fast_clock.h"
#include "profiler/capture/sample_label.h"

namespace periscope::agent {
namespace {

RequestTable make_table(size_t capacity = 64, size_t max_names = 3, int64_t threshold_ms = 1000) {
  init_fast_clock();
  return RequestTable({capacity, max_names, threshold_ms});
}

TEST(RequestTable, BeginAndEndCountPerName) {
  RequestTable table = make_table();
  for (int i = 0; i < 10; ++i) table.end(table.begin("GET /a", i));
  table.end(table.begin("GET /b", 0));
  ASSERT_EQ(table.names(), 2u);
  EXPECT_STREQ(table.name_stats(0).name, "GET /a");
  NameTotals a = table.totals(0);
  EXPECT_EQ(a.requests, 10u);
  EXPECT_EQ(a.buckets[0], 10u) << "instant requests land in the first bucket";
  EXPECT_EQ(table.totals(1).requests, 1u);
  EXPECT_EQ(a.slow, 0u);
}

// The label the sampling handler copies into each sample: the request this thread serves. Each
// case on a thread of its own (the thread's label and chain of requests are thread-local).
void on_fresh_thread(const std::function<void()>& body) { std::thread(body).join(); }

TEST(RequestTable, AThreadsSamplesAreLabelledWithTheRequestItServes) {
  RequestTable table = make_table();
  on_fresh_thread([&] {
    ASSERT_EQ(sample_label(), 0u);
    RequestSlot* outer = table.begin("GET /a", 1);
    EXPECT_EQ(sample_label(), table.label_of(0)) << "name index 0";
    RequestSlot* inner = table.begin("GET /b", 2);
    EXPECT_EQ(sample_label(), table.label_of(1)) << "a nested request labels what it runs";
    table.end(inner);
    EXPECT_EQ(sample_label(), table.label_of(0)) << "and the outer request's label comes back";
    RequestTable::detach(outer);
    EXPECT_EQ(sample_label(), 0u) << "a detached request no longer labels this thread";
    uint32_t on_other_thread = 0, after_end = 0;
    on_fresh_thread([&] {
      RequestTable::attach(outer);
      on_other_thread = sample_label();
      table.end(outer);
      after_end = sample_label();
    });
    EXPECT_EQ(on_other_thread, table.label_of(0)) << "the thread that attaches it serves it";
    EXPECT_EQ(after_end, 0u);
    EXPECT_EQ(sample_label(), 0u);
  });
}

// A label says which table made it: after an agent restart (a new table) the requests that began
// before still name their own names.
TEST(RequestTable, LabelsOfTwoTablesDiffer) {
  RequestTable first = make_table();
  RequestTable second = make_table();
  EXPECT_NE(first.label_of(0), second.label_of(0));
  EXPECT_EQ(first.label_of(0) & 0xffffffu, 1u) << "the name's index + 1 below the table's tag";
}

// A move-assignment (request = Request("b")) begins the new request before the old one ends.
TEST(RequestTable, RequestsThatEndOutOfOrderLeaveNoLabelBehind) {
  RequestTable table = make_table();
  on_fresh_thread([&] {
    RequestSlot* a = table.begin("GET /a", 1);
    RequestSlot* b = table.begin("GET /b", 2);
    table.end(a);
    EXPECT_EQ(sample_label(), table.label_of(1)) << "b still runs";
    table.end(b);
    EXPECT_EQ(sample_label(), 0u) << "not a's label back: a ended";
  });
  on_fresh_thread([&] {
    RequestSlot* first = table.begin("GET /a", 1);
    RequestSlot* second = table.begin("GET /a", 2);
    table.end(first);
    EXPECT_EQ(sample_label(), table.label_of(0)) << "the same name, the second request still runs";
    table.end(second);
    EXPECT_EQ(sample_label(), 0u);
  });
  on_fresh_thread([&] {
    RequestSlot* elsewhere = table.begin("GET /b", 3);
    on_fresh_thread([&] { table.end(elsewhere); });  // ended on another thread, never detached
    RequestSlot* next = table.begin("GET /a", 4);
    table.end(next);
    EXPECT_EQ(sample_label(), 0u) << "the request that ended elsewhere is not served here any more";
  });
}

TEST(RequestTable, NamesBeyondTheBoundCountAsOther) {
  RequestTable table = make_table(64, 3);
  for (std::string n : {"a", "b", "c", "d", "e"}) table.end(table.begin(n.c_str(), 0));
  EXPECT_EQ(table.names(), 3u);
  EXPECT_STREQ(table.name_stats(3).name, "other");
  EXPECT_EQ(table.totals(3).requests, 2u);
}

TEST(RequestTable, SlowRequestsAreCountedAtTheirEnd) {
  RequestTable table = make_table(64, 3, 20);
  RequestSlot* s = table.begin("slowpoke", 1);
  // Started 30 ms ago, by the table's own clock: no sleep that a loaded machine could stretch
  // past the bucket's upper bound.
  const double ticks_per_ns = 1e6 / ticks_to_ns(1000000);
  s->start_ticks.fetch_sub(static_cast<uint64_t>(30e6 * ticks_per_ns));
  table.end(s);
  NameTotals t = table.totals(0);
  EXPECT_EQ(t.slow, 1u);
  EXPECT_GE(t.sum_ns, 30000000u);
  EXPECT_EQ(t.buckets[5], 1u) << "30 ms falls in the (25, 50] ms bucket";
}

TEST(RequestTable, SlotsAreReusedAndAFullTableDropsAndCounts) {
  RequestTable table = make_table(4);
  std::vector<RequestSlot*> held;
  for (int i = 0; i < 4; ++i) held.push_back(table.begin("x", 0));
  for (auto* s : held) ASSERT_NE(s, nullptr);
  EXPECT_EQ(table.begin("x", 0), nullptr);
  EXPECT_EQ(table.dropped(), 1u);
  table.end(held[2]);
  RequestSlot* again = table.begin("x", 0);
  EXPECT_EQ(again, held[2]) << "a freed slot is claimed again";
  EXPECT_EQ(table.high_water(), 4u);
}

TEST(RequestTable, AReportedRequestIsHandedOverAtItsEnd) {
  RequestTable table = make_table();
  RequestSlot* s = table.begin("watched", 9);
  uint64_t word = s->word.load();
  ASSERT_EQ(slot_state(word), kActive);
  ASSERT_TRUE(s->word.compare_exchange_strong(word, slot_word(word >> 8, kReported)));  // the watchdog
  table.end(s);
  EXPECT_EQ(slot_state(s->word.load()), kEnded) << "the watchdog frees it after reading the end";
  EXPECT_GT(s->end_ticks.load(), s->start_ticks.load());
  EXPECT_EQ(s->end_sequence.load(), s->word.load() >> 8);
}

TEST(RequestTable, AReusedSlotCannotBeTakenOverWithAnOldSequence) {
  RequestTable table = make_table();
  RequestSlot* s = table.begin("first", 0);
  uint64_t seen = s->word.load();
  table.end(s);
  RequestSlot* t = table.begin("second", 0);
  ASSERT_EQ(s, t);
  uint64_t expected = seen;
  EXPECT_FALSE(t->word.compare_exchange_strong(expected, slot_word(seen >> 8, kReported)));
}

TEST(RequestTable, CountsFromManyThreadsAddUp) {
  RequestTable table = make_table(256, 3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) table.end(table.begin(i % 2 ? "odd" : "even", 0));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(table.totals(table.index_of("odd")).requests, 40000u);
  EXPECT_EQ(table.totals(table.index_of("even")).requests, 40000u);
}

TEST(RequestTable, PerThreadCachesDoNotLeakIntoANewTable) {
  // A restarted agent makes a new table, possibly smaller, possibly where an old one was.
  for (size_t capacity : {size_t{64}, size_t{4}, size_t{64}}) {
    RequestTable table = make_table(capacity, 2);
    for (int i = 0; i < 50; ++i) table.end(table.begin(i % 3 ? "x" : "y", 0));
    std::vector<RequestSlot*> held;
    for (size_t i = 0; i < capacity; ++i) held.push_back(table.begin("z", 0));
    for (auto* s : held) ASSERT_TRUE(table.owns(s));
    for (auto* s : held) table.end(s);
    EXPECT_EQ(table.totals(table.index_of("x")).requests, 33u);
    EXPECT_EQ(table.totals(table.index_of("y")).requests, 17u);
    EXPECT_EQ(table.totals(2).requests, capacity) << "'z' is beyond the two names: other";
  }
}

TEST(RequestTable, PerNameThresholds) {
  RequestTable table = make_table(64, 3, 1000);
  table.set_threshold("strict", 5);
  EXPECT_EQ(table.threshold_ms(table.index_of("strict")), 5);
  EXPECT_EQ(table.threshold_ms(table.index_of("lenient")), 1000);
}

TEST(RequestTable, DetachAndAttachMoveTheServingThread) {
  RequestTable table = make_table();
  RequestSlot* s = table.begin("moving", 0);
  EXPECT_EQ(s->tid.load(), cached_tid());
  RequestTable::detach(s);
  EXPECT_EQ(s->tid.load(), 0);
  pid_t other = 0;
  std::thread([&] {
    RequestTable::attach(s);
    other = cached_tid();
  }).join();
  EXPECT_EQ(s->tid.load(), other);
  EXPECT_NE(other, cached_tid());
}

}  // namespace
}  // namespace periscope::agent
