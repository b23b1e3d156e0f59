// Profile formats written and read back: folded, speedscope, pprof; bad input is refused in words.
#include <gtest/gtest.h>
#include <cstdlib>
#include <unistd.h>

#include "profiler/flamegraph_html.h"
#include "profiler/heap_profile.h"
#include "profiler/pprof.h"
#include "profiler/profile_formats.h"
#include "profiler/profile_readers.h"
#include "profiler/profile_tree.h"

namespace periscope {
namespace {

Profile sample_profile() {
  Profile p;
  p.mode = "cpu";
  p.hz = 99;
  p.seconds = 2;
  p.samples = 10;
  p.stacks = {{"main (1)", {"main", "run", "work_a"}, 6, "GET /a"},
              {"main (1)", {"main", "run", "work_b"}, 3},
              {"io (2)", {"start", "poll;with;semicolons"}, 1}};
  return p;
}

uint64_t total(const Profile& p) {
  uint64_t n = 0;
  for (const auto& s : p.stacks) n += s.count;
  return n;
}

TEST(ProfileFormats, FoldedRoundTrips) {
  Profile back;
  std::string error;
  ASSERT_TRUE(parse_profile(to_folded(sample_profile(), {}), &back, &error)) << error;
  EXPECT_EQ(total(back), 10u);
  EXPECT_EQ(back.stacks.size(), 3u);
  EXPECT_NE(to_folded(sample_profile(), {}).find("poll:with:semicolons 1"), std::string::npos)
      << "a ';' in a name cannot split a frame";
  EXPECT_NE(to_folded(sample_profile(), {.thread = true}).find("main (1);main;run;work_a 6"), std::string::npos);
  const std::string by_request = to_folded(sample_profile(), {.request = true, .thread = true});
  EXPECT_NE(by_request.find("[request GET /a];main (1);main;run;work_a 6"), std::string::npos) << by_request;
  EXPECT_NE(by_request.find("[no request];main (1);main;run;work_b 3"), std::string::npos) << by_request;
}

TEST(ProfileFormats, PprofRoundTripsThroughGzip) {
  Profile back;
  std::string error;
  ASSERT_TRUE(parse_profile(to_pprof_gz(sample_profile()), &back, &error)) << error;
  EXPECT_EQ(back.mode, "cpu");
  EXPECT_EQ(back.hz, 99);
  EXPECT_EQ(total(back), 10u);
  bool found = false;
  for (const auto& s : back.stacks) {
    if (s.frames == std::vector<std::string>{"main", "run", "work_a"}) {
      found = true;
      EXPECT_EQ(s.count, 6u);
      EXPECT_EQ(s.thread, "main (1)");
      EXPECT_EQ(s.request, "GET /a") << "the request is a label too";
    }
    if (s.frames.back() == "work_b") {
      EXPECT_EQ(s.request, "") << "no label, no request";
    }
  }
  EXPECT_TRUE(found);
}

TEST(ProfileFormats, SpeedscopeRoundTrips) {
  Profile back;
  std::string error;
  ASSERT_TRUE(parse_profile(to_speedscope(sample_profile(), {.thread = true}), &back, &error)) << error;
  EXPECT_EQ(total(back), 10u);
}

TEST(ProfileFormats, HtmlFlameGraphCarriesItsProfile) {
  Profile p = sample_profile();
  p.stacks.push_back({"t", {"main", "</script><b>not markup</b>"}, 2});
  Profile back;
  std::string error;
  ASSERT_TRUE(parse_profile(render_profile(p, "html", {}), &back, &error)) << error;
  EXPECT_EQ(total(back), 12u);
  EXPECT_EQ(back.stacks.back().frames.back(), "</script><b>not markup</b>") << "escaped in the page, intact in data";
  EXPECT_FALSE(parse_profile("<html><body>hello</body></html>", &back, &error));
  EXPECT_EQ(error, "an HTML file without a periscope profile in it");
}

TEST(ProfileFormats, BadInputIsRefusedInWords) {
  Profile p;
  std::string error;
  EXPECT_FALSE(parse_profile("main;work 12\nnot a line\n", &p, &error));
  EXPECT_EQ(error, "line 2 is not 'frame;frame;... COUNT'");
  std::string gz = to_pprof_gz(sample_profile());
  EXPECT_FALSE(parse_profile(gz.substr(0, gz.size() / 2), &p, &error));
  EXPECT_EQ(error, "gzip data is corrupt or expands beyond 128 MiB");
  EXPECT_FALSE(parse_profile(gzip(std::string("\x0a\xff\xff\xff\xff\x0f", 6)), &p, &error));
  EXPECT_NE(error.find("malformed pprof profile"), std::string::npos) << error;
  EXPECT_FALSE(parse_profile("{\"x\": 1}", &p, &error));
  EXPECT_NE(error.find("not a speedscope file"), std::string::npos);
  EXPECT_FALSE(read_profile_file("/nonexistent/profile.folded", &p, &error));
  EXPECT_EQ(error, "cannot open /nonexistent/profile.folded");
}

TEST(ProfileFormats, CountsMustBeNonNegativeAndFit) {
  Profile p;
  std::string error;
  EXPECT_FALSE(parse_profile("main;work -4\n", &p, &error)) << "strtoull reads -4 as 2^64 - 4";
  EXPECT_NE(error.find("the count '-4' is not a number of samples"), std::string::npos) << error;
  EXPECT_FALSE(parse_profile("main;work +4\n", &p, &error));
  EXPECT_FALSE(parse_profile("main;work 99999999999999999999\n", &p, &error));
  EXPECT_NE(error.find("does not fit in 64 bits"), std::string::npos) << error;
  EXPECT_FALSE(parse_profile("main;work 9223372036854775808\n", &p, &error)) << "pprof could not write it";
  EXPECT_NE(error.find("over 2^63-1"), std::string::npos) << error;
  EXPECT_FALSE(parse_profile("a 9223372036854775807\nb 9223372036854775807\nc 2\n", &p, &error))
      << "the total overflows";
  EXPECT_NE(error.find("line 3"), std::string::npos) << error;
  EXPECT_TRUE(parse_profile("a 0\nb 7\n", &p, &error)) << error;
  EXPECT_EQ(p.samples, 7u);
}

TEST(ProfileFormats, PprofCountsMustBeNonNegativeAndFit) {
  Profile negative = sample_profile();
  negative.stacks[0].count = static_cast<uint64_t>(-5);  // how profile.proto's int64 -5 is encoded
  Profile p;
  std::string error;
  EXPECT_FALSE(parse_profile(to_pprof_gz(negative), &p, &error));
  EXPECT_NE(error.find("a sample has a negative count"), std::string::npos) << error;
  Profile overflowing = sample_profile();
  overflowing.stacks[0].count = uint64_t{1} << 62;
  overflowing.stacks.push_back(overflowing.stacks[0]);
  overflowing.stacks.push_back(overflowing.stacks[0]);
  overflowing.stacks.push_back(overflowing.stacks[0]);
  overflowing.stacks.push_back(overflowing.stacks[0]);
  EXPECT_FALSE(parse_profile(to_pprof_gz(overflowing), &p, &error));
  EXPECT_NE(error.find("do not fit in 64 bits"), std::string::npos) << error;
}

TEST(ProfileFormats, AHugeFileIsRefusedWithoutReadingItAll) {
  Profile p;
  std::string error;
  char path[] = "/tmp/periscope-huge-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t{2} << 30), 0);  // sparse: 2 GiB that take no disk and no time
  ::close(fd);
  EXPECT_FALSE(read_profile_file(path, &p, &error));
  EXPECT_EQ(error, std::string(path) + " is larger than 1 GiB");
  ::unlink(path);
}

TEST(ProfileFormats, AGzipBombIsRefusedAtItsBoundNotAtTheEnd) {
  Profile p;
  std::string error;
  const std::string bomb = gzip(std::string(size_t{200} << 20, '\n'));  // 200 MiB of newlines, ~200 KiB gzipped
  EXPECT_FALSE(parse_profile(bomb, &p, &error));
  EXPECT_EQ(error, "gzip data is corrupt or expands beyond 128 MiB");
}

TEST(ProfileFormats, HtmlPlaceholdersInTheProfileAreNotSubstitutedAgain) {
  Profile p = sample_profile();
  p.mode = "cpu @TITLE@ @DATA@";  // from a file we were given: found by fuzzing (it used to hang)
  p.stacks[0].frames.push_back("@DATA@");
  std::string page = to_flamegraph_html(p, "title with @TITLE@ and @DATA@");
  size_t data_at = page.find("const PROFILE = ");
  ASSERT_NE(data_at, std::string::npos);
  EXPECT_EQ(page.find("const PROFILE = ", data_at + 1), std::string::npos);
  EXPECT_NE(page.find("<title>title with @TITLE@ and @DATA@</title>"), std::string::npos);
  Profile back;
  std::string error;
  ASSERT_TRUE(parse_profile(page, &back, &error)) << error;  // the page is still readable
  EXPECT_EQ(back.mode, p.mode);
}

TEST(ProfileFormats, FormatFollowsTheFileName) {
  std::string error;
  EXPECT_EQ(profile_format_for("a.folded", &error), "folded");
  EXPECT_EQ(profile_format_for("a.pb.gz", &error), "pprof");
  EXPECT_EQ(profile_format_for("a.speedscope.json", &error), "speedscope");
  EXPECT_EQ(profile_format_for("a.txt", &error), "");
  EXPECT_NE(error.find("unknown format"), std::string::npos);
}

TEST(ProfileTree, TopDownAndBottomUpShares) {
  std::string top = render_tree(sample_profile(), false, 0);
  EXPECT_NE(top.find(" 90.0%    0.0%  main"), std::string::npos) << top;
  EXPECT_NE(top.find(" 60.0%   60.0%      work_a"), std::string::npos) << top;
  std::string bottom = render_tree(sample_profile(), true, 0);
  EXPECT_NE(bottom.find(" 60.0%   60.0%  work_a"), std::string::npos) << bottom;
  EXPECT_EQ(render_tree(sample_profile(), false, 50).find("work_b"), std::string::npos) << "pruned below 50%";
}

HeapProfile heap_profile(double keep_bytes, double churn_alloc) {
  HeapProfile h;
  h.rate = 512 * 1024;
  h.seconds = 10;
  h.samples = 100;
  h.stacks.push_back({{}, {"main", "keep"}, 10, keep_bytes, 10, keep_bytes});
  h.stacks.push_back({{}, {"main", "churn"}, 1000, churn_alloc, 0, 0});
  return h;
}

TEST(HeapProfileFormat, DeltaSubtractsStackByStackAndKeepsWhatIsNew) {
  HeapProfile before = heap_profile(1 << 20, 1 << 30);
  HeapProfile after = heap_profile(3 << 20, 1536.0 * (1 << 20));
  after.seconds = 70;
  after.stacks.push_back({{}, {"main", "leak"}, 5, 5 << 20, 5, 5 << 20});
  HeapProfile d = heap_delta(before, after);
  ASSERT_EQ(d.stacks.size(), 3u);
  EXPECT_TRUE(d.delta);
  EXPECT_DOUBLE_EQ(d.seconds, 60);
  EXPECT_DOUBLE_EQ(d.stacks[0].inuse_bytes, 2 << 20);
  EXPECT_DOUBLE_EQ(d.stacks[1].alloc_bytes, 512.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(d.stacks[2].inuse_bytes, 5 << 20);
  // The table puts the biggest growth first.
  const std::string table = render_heap_top(d, HeapValue::kInuseSpace, 5);
  EXPECT_LT(table.find("leak"), table.find("keep")) << table;
  EXPECT_NE(table.find("change in inuse_space: 7.00 MiB over 60 s"), std::string::npos) << table;
}

TEST(HeapProfileFormat, PprofCarriesGoFourValuesAndReadsBackTheDefault) {
  const HeapProfile h = heap_profile(1 << 20, 1 << 30);
  std::string error;
  Profile inuse, allocs;
  ASSERT_TRUE(parse_profile(heap_to_pprof_gz(h, HeapValue::kInuseSpace), &inuse, &error)) << error;
  EXPECT_EQ(inuse.mode, "heap");
  EXPECT_EQ(inuse.unit, "bytes");
  EXPECT_EQ(inuse.samples, 1u << 20);  // churn keeps nothing: not a stack of this view
  ASSERT_EQ(inuse.stacks.size(), 1u);
  EXPECT_EQ(inuse.stacks[0].frames.back(), "keep");
  ASSERT_TRUE(parse_profile(heap_to_pprof_gz(h, HeapValue::kAllocSpace), &allocs, &error)) << error;
  EXPECT_EQ(allocs.samples, (1u << 20) + (1u << 30));
}

TEST(HeapProfileFormat, AsProfileDropsNegativesAndSaysItsUnit) {
  HeapProfile h = heap_profile(1 << 20, 1 << 30);
  h.stacks[0].inuse_bytes = -4096;  // a delta: freed
  Profile p = heap_as_profile(h, HeapValue::kInuseSpace);
  EXPECT_EQ(p.unit, "bytes");
  EXPECT_TRUE(p.stacks.empty());
  p = heap_as_profile(h, HeapValue::kAllocObjects);
  EXPECT_EQ(p.unit, "objects");
  EXPECT_EQ(p.samples, 1010u);
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(-3.0 * (1 << 30)), "-3.00 GiB");
  EXPECT_EQ(human_bytes(812), "812 B");
}

}  // namespace
}  // namespace periscope
