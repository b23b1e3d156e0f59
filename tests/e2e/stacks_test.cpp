// `periscope stacks` on a target with known call chains, through the agent and through ptrace,
// checked against the source (function names, file:line, inlined frames, thread names) and
// against eu-stack on the same process.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fstream>
#include <sstream>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

using nlohmann::json;

const std::string kSource = source_path("tests/targets/stack_target.cpp");

struct Target {
  explicit Target(bool with_agent, const SocketDir& dir, const std::string& program = target_path("stack_target"))
      : process({program}, with_agent ? Env{{"LD_PRELOAD", agent_preload()}, {"PERISCOPE_SOCKET_DIR", dir.path()}}
                                      : dir.env()) {
    auto ready = process.read_line();
    if (!ready || ready->rfind("ready ", 0) != 0) throw std::runtime_error("stack_target did not start");
    if (with_agent && !wait_until([&] { return file_exists(dir.socket_for(process.pid())); })) {
      throw std::runtime_error("no agent socket: " + process.stderr_text());
    }
    // Stable stacks: wait until the main thread sits in read(2) on stdin, past printing "ready".
    const std::string syscall_file = "/proc/" + pid() + "/syscall";
    wait_until([&] {
      std::ifstream in(syscall_file);
      std::string number;
      return (in >> number) && number == "0";
    });
  }
  std::string pid() const { return std::to_string(process.pid()); }
  Process process;
};

json stacks_json(const std::vector<std::string>& args) {
  std::vector<std::string> all{"stacks", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  auto r = periscope(all);
  if (r.exit_code != 0) throw std::runtime_error("periscope stacks failed: " + r.err);
  return json::parse(r.out);
}

const json& thread_named(const json& stacks, const std::string& name) {
  for (const auto& t : stacks["threads"]) {
    if (t["name"] == name) return t;
  }
  throw std::runtime_error("no thread named " + name + " in " + stacks.dump());
}

// Index of the first frame whose function contains `name`, or -1.
int frame_index(const json& thread, const std::string& name) {
  const auto& frames = thread["frames"];
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i]["function"].get<std::string>().find(name) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void expect_known_chains(const json& stacks) {
  const json& spinner = thread_named(stacks, "spinner");
  int inner = frame_index(spinner, "spin_inner"), middle = frame_index(spinner, "spin_middle"),
      outer = frame_index(spinner, "spin_outer");
  ASSERT_EQ(inner, 0) << spinner.dump(1);
  EXPECT_LT(inner, middle);
  EXPECT_LT(middle, outer);
  EXPECT_TRUE(ends_with(spinner["frames"][inner]["file"], "tests/targets/stack_target.cpp"));
  EXPECT_EQ(spinner["frames"][inner]["line"], marker_line(kSource, "// marker: spin"));

  const json& reader = thread_named(stacks, "reader");
  int read_frame = frame_index(reader, "blocked_in_read");
  ASSERT_GE(read_frame, 1) << "libc's read is below it: " << reader.dump(1);
  EXPECT_EQ(reader["frames"][read_frame]["line"], marker_line(kSource, "// marker: read"));
  EXPECT_EQ(reader["state"], "sleeping");

  const json& inliner = thread_named(stacks, "inliner");
  int helper = frame_index(inliner, "inlined_helper");
  ASSERT_EQ(helper, 0) << inliner.dump(1);
  EXPECT_TRUE(inliner["frames"][helper]["inlined"].get<bool>());
  EXPECT_EQ(inliner["frames"][helper]["line"], marker_line(kSource, "// marker: inlined"));
  // Two levels of inlining: each level is a frame, at the line where the next one calls it.
  ASSERT_EQ(frame_index(inliner, "inlined_outer"), helper + 1) << inliner.dump(1);
  EXPECT_TRUE(inliner["frames"][helper + 1]["inlined"].get<bool>());
  EXPECT_EQ(inliner["frames"][helper + 1]["line"], marker_line(kSource, "// marker: inlined call"));
  ASSERT_EQ(frame_index(inliner, "calls_inlined"), helper + 2);
  EXPECT_FALSE(inliner["frames"][helper + 2]["inlined"].get<bool>());
  EXPECT_EQ(inliner["frames"][helper + 2]["line"], marker_line(kSource, "// marker: outer call"));

  const json& deep = thread_named(stacks, "deep");
  EXPECT_TRUE(deep["truncated"].get<bool>()) << "400 levels are cut at 256";
  EXPECT_GE(deep["frames"].size(), 256u);
  EXPECT_GE(frame_index(deep, "recurse"), 0);
}

TEST(Stacks, AgentCapturesKnownChainsInProcess) {
  SocketDir dir;
  Target target(true, dir);
  json stacks = stacks_json({target.pid()});
  EXPECT_EQ(stacks["method"], "agent");
  expect_known_chains(stacks);
  // The agent does not signal a thread that blocks its signal; the viewer reads it by ptrace.
  const json& blocker = thread_named(stacks, "blocker");
  if (may_ptrace_siblings()) {
    EXPECT_NE(blocker.value("note", "").find("blocks signal"), std::string::npos) << blocker.dump();
    EXPECT_GE(frame_index(blocker, "sleep_with_signals_blocked"), 0) << blocker.dump();
  } else {
    EXPECT_NE(blocker.value("error", "").find("blocks signal"), std::string::npos) << blocker.dump();
  }
  EXPECT_EQ(periscope({"exec", target.pid(), "info"}).exit_code, 0) << "the agent lives on";
}

bool maps_library(const std::string& pid, const std::string& name) {
  std::ifstream maps("/proc/" + pid + "/maps");
  std::string all((std::istreambuf_iterator<char>(maps)), {});
  return all.find(name) != std::string::npos;
}

// libdw (and libelf, liblzma, libbz2 with it) is mapped into the host only once the agent
// symbolizes there: every fork of a host that never asked copies none of it.
TEST(Stacks, TheAgentLoadsLibdwOnlyWhenItSymbolizes) {
  SocketDir dir;
  Target target(true, dir);
  EXPECT_FALSE(maps_library(target.pid(), "/libdw")) << "libdw mapped at start";
  EXPECT_FALSE(maps_library(target.pid(), "/libelf")) << "libelf mapped at start";
  // The manhole's own text reply is symbolized by the agent, in the host.
  auto r = periscope({"exec", target.pid(), "stacks"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("spin_middle"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_TRUE(maps_library(target.pid(), "/libdw")) << "symbolized without libdw?";
}

TEST(Stacks, PtraceCapturesKnownChainsWithoutAnAgent) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  SocketDir dir;
  Target target(false, dir);
  json stacks = stacks_json({target.pid()});
  EXPECT_EQ(stacks["method"], "ptrace");
  expect_known_chains(stacks);
  const json& blocker = thread_named(stacks, "blocker");
  EXPECT_GE(frame_index(blocker, "sleep_with_signals_blocked"), 0) << "ptrace needs no signal: " << blocker.dump();
  target.process.write_stdin("x\n");
  EXPECT_FALSE(target.process.wait(100ms)) << "the target runs on after being traced";
}

TEST(Stacks, TextNamesThreadsStatesAndTheWayUsed) {
  SocketDir dir;
  Target with_agent(true, dir);
  auto r = periscope({"stacks", with_agent.pid()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("captured in-process by the agent"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"reader\" (sleeping)"), std::string::npos) << r.out;
  const std::string spin_line = std::to_string(marker_line(kSource, "// marker: spin"));
  EXPECT_NE(r.out.find("(anonymous namespace)::spin_inner (stack_target.cpp:" + spin_line + ")"), std::string::npos)
      << r.out;
  auto full = periscope({"stacks", "--full-names", with_agent.pid()});
  EXPECT_NE(full.out.find("(anonymous namespace)::spin_inner() (stack_target.cpp:" + spin_line + ")"),
            std::string::npos)
      << full.out;
  EXPECT_NE(r.out.find("[inlined] inlined_helper"), std::string::npos);
  EXPECT_NE(r.out.find("... cut at 256 frames"), std::string::npos);
  EXPECT_NE(r.out.find("blocks signal"), std::string::npos);
}

TEST(Stacks, PtraceFlagReadsAProcessWithAnAgentByPtrace) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  SocketDir dir;
  Target with_agent(true, dir);
  auto forced = periscope({"stacks", "--ptrace", with_agent.pid()});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("by ptrace"), std::string::npos);
}

// Tests that hold both ways of reading stacks: in-process by the agent, and by ptrace from the
// viewer (skipped, and reported as skipped, where ptrace is not allowed).
class StacksBothWays : public testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!with_agent()) SKIP_UNLESS_PTRACE_ALLOWED();
  }
  bool with_agent() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Stacks, StacksBothWays, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& param) { return param.param ? "agent" : "ptrace"; });

TEST_P(StacksBothWays, ThreadFilterShowsOnlyThoseThreads) {
  SocketDir dir;
  {
    const bool agent = with_agent();
    Target target(agent, dir);
    json all = stacks_json({target.pid()});
    int reader_tid = thread_named(all, "reader")["tid"];
    json one = stacks_json({target.pid(), "--thread", std::to_string(reader_tid), "--thread", "999999999"});
    ASSERT_EQ(one["threads"].size(), 2u) << one.dump();
    EXPECT_EQ(one["threads"][0]["tid"], reader_tid);
    EXPECT_GE(frame_index(one["threads"][0], "blocked_in_read"), 0);
    EXPECT_NE(one["threads"][1]["error"].get<std::string>().find("no such thread"), std::string::npos);
  }
}

// eu-stack's frames per thread: TID -> function names (empty where it has none).
std::map<int, std::vector<std::string>> eu_stack(const std::string& pid) {
  auto r = run({"/usr/bin/eu-stack", "-p", pid});
  std::map<int, std::vector<std::string>> out;
  std::istringstream in(r.out);
  int tid = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("TID ", 0) == 0) {
      tid = std::stoi(line.substr(4));
    } else if (line.rfind("#", 0) == 0 && tid) {
      std::istringstream f(line);
      std::string index, pc, name;
      f >> index >> pc;
      std::getline(f, name);
      name.erase(0, name.find_first_not_of(' '));
      out[tid].push_back(name);
    }
  }
  return out;
}

std::vector<std::string> physical_frames(const json& thread) {
  std::vector<std::string> names;
  for (const auto& f : thread["frames"]) {
    if (!f["inlined"].get<bool>()) names.push_back(f["function"]);
  }
  return names;
}

void expect_agreement(const json& ours, const std::map<int, std::vector<std::string>>& theirs,
                      const std::set<std::string>& skip) {
  int compared = 0;
  for (const auto& t : ours["threads"]) {
    if (skip.count(t["name"])) continue;
    auto it = theirs.find(t["tid"].get<int>());
    ASSERT_NE(it, theirs.end()) << "eu-stack misses thread " << t["tid"];
    auto mine = physical_frames(t);
    size_t n = std::min(mine.size(), it->second.size());
    ASSERT_GE(n, 3u) << t.dump(1);
    std::vector<std::string> a(mine.begin(), mine.begin() + n), b(it->second.begin(), it->second.begin() + n);
    EXPECT_EQ(a, b) << "thread " << t["name"];
    ++compared;
  }
  EXPECT_GE(compared, 5);
}

TEST(Stacks, FunctionNamesAgreeWithEuStack) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  SocketDir dir;
  {
    Target target(false, dir);
    auto theirs = eu_stack(target.pid());
    expect_agreement(stacks_json({target.pid()}), theirs, {});
  }
  {
    // The agent's own thread is busy capturing, and the blocker never answers a signal.
    Target target(true, dir);
    auto theirs = eu_stack(target.pid());
    expect_agreement(stacks_json({target.pid()}), theirs, {"periscope", "blocker"});
  }
}

TEST(Stacks, ThreadsThatComeAndGoDoNotBreakCapture) {
  SocketDir dir;
  Target target(true, dir);
  target.process.write_stdin("spawn-and-exit\n");
  for (int i = 0; i < 30; ++i) {
    json stacks = stacks_json({target.pid()});
    for (const auto& t : stacks["threads"]) {
      if (t["name"] == "short-lived" && t.contains("error")) {
        EXPECT_NE(t["error"].get<std::string>().find("exited"), std::string::npos) << t.dump();
      }
    }
  }
  EXPECT_EQ(periscope({"exec", target.pid(), "threads"}).exit_code, 0);
  EXPECT_FALSE(target.process.wait(10ms)) << "host alive";
}

TEST_P(StacksBothWays, CodeWithoutUnwindInfoAndAGarbageFramePointerDoesNotCrashTheHost) {
  SocketDir dir;
  {
    const bool agent = with_agent();
    Target target(agent, dir);
    for (int i = 0; i < 20; ++i) {
      json stacks = stacks_json({target.pid()});
      const json& t = thread_named(stacks, "no-cfi");
      ASSERT_FALSE(t.contains("error")) << t.dump();
      EXPECT_EQ(frame_index(t, "spin_without_unwind_info"), 0) << t.dump(1);
    }
    EXPECT_FALSE(target.process.wait(10ms)) << "host alive";
  }
}

TEST_P(StacksBothWays, StrippedBinaryShowsModuleOffsets) {
  SocketDir dir;
  std::string stripped = dir.path() + "/stripped_target";
  // Without its build id too: SeparateDebugInfoUnderUsrLibDebugIsUsed may have installed debug
  // info for this very build id while it runs in parallel.
  ASSERT_EQ(run({"/usr/bin/strip", "--strip-all", "--remove-section=.note.gnu.build-id", "-o", stripped,
                 target_path("stack_target")})
                .exit_code,
            0);
  {
    const bool agent = with_agent();
    Target target(agent, dir, stripped);
    auto r = periscope({"stacks", target.pid()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("stripped_target+0x"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("spin_inner"), std::string::npos) << "no symbols to name it";
  }
}

TEST(Stacks, LibraryLoadedAfterTheAgentStartedIsNamed) {
  SocketDir dir;
  Target target(true, dir);
  stacks_json({target.pid()});  // the agent's symbolizer now knows the modules of before
  target.process.write_stdin("load " + plugin_path() + "\n");
  ASSERT_EQ(target.process.read_line(), "loaded");
  json plugin;
  // The new thread needs a moment to get from pthread_create into plugin_spin.
  bool named = wait_until([&] {
    plugin = thread_named(stacks_json({target.pid()}), "plugin");
    return frame_index(plugin, "plugin_spin") == 0;
  }, 5s);
  ASSERT_TRUE(named) << plugin.dump(1);
  EXPECT_EQ(plugin["frames"][0]["line"], marker_line(source_path("tests/targets/plugin.cpp"), "// marker: plugin"));
}

// One test for both ways (not StacksBothWays): the debug file it installs is shared by build id,
// and a parallel run of the other way would remove it under this one.
TEST(Stacks, SeparateDebugInfoUnderUsrLibDebugIsUsed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to install into /usr/lib/debug/.build-id";
  SocketDir dir;
  const std::string binary = dir.path() + "/stripped_with_debuginfo";
  const std::string debug = dir.path() + "/target.debug";
  ASSERT_EQ(run({"/usr/bin/objcopy", "--only-keep-debug", target_path("stack_target"), debug}).exit_code, 0);
  ASSERT_EQ(run({"/usr/bin/strip", "--strip-all", "-o", binary, target_path("stack_target")}).exit_code, 0);
  // The build id names the file: /usr/lib/debug/.build-id/ab/cdef....debug
  auto notes = run({"/usr/bin/readelf", "-n", binary}).out;
  auto pos = notes.find("Build ID: ");
  ASSERT_NE(pos, std::string::npos) << notes;
  std::string id = notes.substr(pos + 10, notes.find('\n', pos) - pos - 10);
  std::string target_dir = "/usr/lib/debug/.build-id/" + id.substr(0, 2);
  std::string installed = target_dir + "/" + id.substr(2) + ".debug";
  ASSERT_EQ(run({"/bin/mkdir", "-p", target_dir}).exit_code, 0);
  ASSERT_EQ(run({"/bin/cp", debug, installed}).exit_code, 0);
  for (bool agent : {true, false}) {  // root: ptrace is allowed
    Target target(agent, dir, binary);
    json stacks = stacks_json({target.pid()});
    const json& spinner = thread_named(stacks, "spinner");
    EXPECT_EQ(frame_index(spinner, "spin_inner"), 0) << spinner.dump(1);
    const json frames = spinner.is_object() ? spinner.value("frames", json::array()) : json::array();
    ASSERT_FALSE(frames.empty()) << spinner.dump(1);
    EXPECT_EQ(frames[0]["line"], marker_line(kSource, "// marker: spin"));
  }
  ::unlink(installed.c_str());
}

TEST(Stacks, DeadPidAndOtherUsersAreExplained) {
  Process gone({"/bin/true"}, {});
  ASSERT_EQ(gone.wait(), 0);
  auto dead = periscope({"stacks", std::to_string(gone.pid())});
  EXPECT_EQ(dead.exit_code, 3);
  EXPECT_NE(dead.err.find("no process with PID"), std::string::npos) << dead.err;

  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the viewer as another user";
  SocketDir dir;
  Target target(false, dir);
  auto denied = periscope({"stacks", target.pid()}, {}, 65534);
  EXPECT_EQ(denied.exit_code, 4) << denied.out << denied.err;
  EXPECT_NE(denied.err.find("not permitted to ptrace process " + target.pid()), std::string::npos) << denied.err;
}

}  // namespace
}  // namespace periscope::test
