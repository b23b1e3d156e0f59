// Every profile format `periscope view FILE` reads: collapsed stacks (.folded), speedscope JSON,
// pprof (.pb.gz, gzipped or not) and our HTML flame graph. viewer/view_command.cpp calls
// read_profile_file(), which reads the file and hands its bytes to parse_profile(); the format is
// told by the content, never by the name, so the fuzzed entry is parse_profile(). Then, like the
// viewer, the profile is printed as a call tree or converted to another format. See docs/fuzzing.md.
//
// Input: the first byte is a control byte, the rest is the file.
//   bit 0      gzip the file before reading it (so the fuzzer mutates the protobuf inside a valid
//              gzip stream rather than the deflate bytes)
//   bits 1..3  what `periscope view` does next: 0 tree, 1 bottom-up tree, 2 folded, 3 per-thread
//              folded, 4 speedscope, 5 per-thread speedscope, 6 .pb.gz, 7 .html
//
// Invariants: parse_profile never throws (it reports errors by returning false with a one-line
// message); a file it accepts can be rendered, and every file periscope writes from it reads back
// with the same total of samples (pprof: the same stacks, frame for frame; HTML: as many stacks).
// Folded output is told apart from JSON/HTML/gzip even when its first frame starts with '{' or '<'.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "profiler/pprof.h"
#include "profiler/profile_formats.h"
#include "profiler/profile_readers.h"
#include "profiler/profile_tree.h"

using namespace periscope;

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      __builtin_fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace {

uint64_t total(const Profile& p) {
  uint64_t n = 0;
  for (const auto& s : p.stacks) n += s.count;
  return n;
}

bool same_stacks(const Profile& a, const Profile& b) {
  if (a.stacks.size() != b.stacks.size()) return false;
  for (size_t i = 0; i < a.stacks.size(); ++i) {
    if (a.stacks[i].count != b.stacks[i].count || a.stacks[i].frames != b.stacks[i].frames ||
        a.stacks[i].thread != b.stacks[i].thread || a.stacks[i].request != b.stacks[i].request)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return -1;
  const unsigned control = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (control & 1) file = gzip(file);

  Profile profile;
  std::string error;
  bool ok = parse_profile(file, &profile, &error);  // must not throw: an exception here crashes
  if (!ok) {
    CHECK(!error.empty());
    CHECK(error.find('\n') == std::string::npos);  // one line
    return 0;
  }

  const unsigned action = (control >> 1) & 7;
  if (action <= 1) {
    std::string tree = render_tree(profile, /*bottom_up=*/action == 1, /*min_percent=*/0.5);
    CHECK(!tree.empty() && tree.back() == '\n');
    return 0;
  }
  static const char* const kFormats[] = {"folded", "folded", "speedscope", "speedscope", "pprof", "html"};
  const std::string format = kFormats[action - 2];
  const bool per_thread = action == 3 || action == 5;
  std::string written = render_profile(profile, format, {.request = action == 2 || action == 5, .thread = per_thread});

  Profile back;
  std::string back_error;
  bool back_ok = parse_profile(written, &back, &back_error);
  if (!back_ok) {
    __builtin_fprintf(stderr, "re-reading %s failed: %s\n", format.c_str(), back_error.c_str());
    std::abort();
  }
  CHECK(total(back) == total(profile));
  if (format == "pprof") CHECK(same_stacks(back, profile));
  if (format == "html") CHECK(back.stacks.size() == profile.stacks.size());
  return 0;
}
