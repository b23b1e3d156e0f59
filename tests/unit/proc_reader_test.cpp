#include "profiler/proc_reader.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <thread>
#include <unistd.h>

#include "profiler/process_info.h"
#include "profiler/thread_list.h"

namespace periscope {
namespace {

TEST(ParseStat, HandlesSpacesAndParenthesesInName) {
  auto st = proc::parse_stat(
      "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1000 10 0 0 0 0");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "a (weird) name");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->utime_ticks, 250u);
  EXPECT_EQ(st->stime_ticks, 50u);
  EXPECT_EQ(st->num_threads, 3);
  EXPECT_EQ(st->start_ticks, 12345u);
  EXPECT_EQ(st->vsize_bytes, 1000u);
  EXPECT_EQ(st->rss_pages, 10);
}

TEST(ParseStat, RejectsTruncatedLines) {
  EXPECT_FALSE(proc::parse_stat("42 (x) S 1 2"));
  EXPECT_FALSE(proc::parse_stat("garbage"));
}

TEST(ThreadList, SeesANamedThreadOfThisProcess) {
  std::atomic<bool> stop{false};
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "unit-named");
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    for (const auto& info : list_threads(::getpid())) seen |= info.name == "unit-named";
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  t.join();
  EXPECT_TRUE(seen);
}

TEST(ProcessInfo, DescribesThisProcessAndNotADeadOne) {
  auto me = read_process_info(::getpid());
  ASSERT_TRUE(me);
  EXPECT_EQ(me->pid, ::getpid());
  EXPECT_FALSE(me->exe.empty());
  EXPECT_FALSE(me->cmdline.empty());
  EXPECT_GE(me->threads, 1);
  EXPECT_FALSE(read_process_info(999999999));
  EXPECT_FALSE(process_exists(999999999));
}

TEST(FormatDuration, PicksTwoUnits) {
  EXPECT_EQ(format_duration(5), "5s");
  EXPECT_EQ(format_duration(125), "2m05s");
  EXPECT_EQ(format_duration(7300), "2h01m");
  EXPECT_EQ(format_duration(90000), "1d1h");
}

}  // namespace
}  // namespace periscope
