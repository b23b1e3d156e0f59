// Hosts that do to their own process what real daemons do — reset every signal, install their own
// handlers, block signals on worker threads, close every descriptor, reopen files and fork, chroot,
// drop privileges — and the agent that must survive each without harming them.
#include <gtest/gtest.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {


class Hostile {
 public:
  explicit Hostile(const SocketDir& dir, Env extra = {})
      : dir_(dir), process_({target_path("hostile_host")}, with_agent(dir, std::move(extra))) {
    auto ready = process_.read_line();
    if (!ready || ready->rfind("ready ", 0) != 0) throw std::runtime_error("hostile_host did not start");
    if (!wait_until([&] { return file_exists(dir.socket_for(pid())); })) {
      throw std::runtime_error("no agent socket: " + process_.stderr_text());
    }
  }
  // Sends one command and returns its one-line answer.
  std::string command(const std::string& line) {
    process_.write_stdin(line + "\n");
    return process_.read_line().value_or("<no answer>");
  }
  pid_t pid() const { return process_.pid(); }
  std::string pid_text() const { return std::to_string(process_.pid()); }
  bool alive() { return !process_.wait(std::chrono::milliseconds(50)).has_value(); }
  Process& process() { return process_; }

 private:
  static Env with_agent(const SocketDir& dir, Env extra) {
    extra["LD_PRELOAD"] = agent_preload();
    extra["PERISCOPE_SOCKET_DIR"] = dir.path();
    return extra;
  }
  const SocketDir& dir_;
  Process process_;
};

// The uid-wide count of queued signals (SigQ's first number in /proc/PID/status).
long queued_signals(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigQ:", 0) == 0) return std::stol(line.substr(5));
  }
  return -1;
}

// A non-PIE host that takes malloc's address: dlsym gives its PLT stub for "malloc", which leads
// back to the agent. Heap profiling off (the interposer bypassed) and on from the start.
TEST(HostileHost, ANonPieHostThatTakesMallocsAddressRunsWithTheAgent) {
  for (const char* heap : {"off", "on"}) {
    SocketDir dir;
    auto r = run({target_path("canonical_plt_host")},
                 {{"LD_PRELOAD", agent_preload()}, {"PERISCOPE_SOCKET_DIR", dir.path()}, {"PERISCOPE_HEAP", heap}}, "",
                 kSameUser, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 0) << "PERISCOPE_HEAP=" << heap << ": " << r.err;
    EXPECT_EQ(r.out, "ok 63968000\n") << "PERISCOPE_HEAP=" << heap << ": " << r.err;
  }
}

TEST(HostileHost, ResetSignalsThenStacksDoesNotKillTheHostAndSaysWhy) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("reset-signals"), "ok");
  auto r = periscope({"stacks", host.pid_text()});
  EXPECT_TRUE(host.alive()) << "the host died: " << host.process().stderr_text();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("replaced"), std::string::npos) << r.out << r.err;
}

TEST(HostileHost, ResetSignalsThenStacksReadsTheThreadsByPtraceInstead) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("reset-signals"), "ok");
  auto r = periscope({"stacks", host.pid_text()});
  EXPECT_TRUE(host.alive()) << "the host died: " << host.process().stderr_text();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hostile_hot_loop"), std::string::npos) << r.out << r.err;
}

TEST(HostileHost, ResetSignalsThenRecordDoesNotKillTheHostAndFailsWithTheReason) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("reset-signals"), "ok");
  const std::string out = dir.path() + "/cpu.folded";
  auto r = periscope({"record", host.pid_text(), "-d", "1", "-o", out});
  EXPECT_TRUE(host.alive()) << "the host died: " << host.process().stderr_text();
  EXPECT_NE(r.exit_code, 0) << "a record that cannot sample must not succeed: " << r.err;
  EXPECT_NE(r.err.find("replaced"), std::string::npos) << r.err;
}

TEST(HostileHost, OwnHandlersNeverReceiveTheAgentsSignals) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("own-handlers"), "ok");
  auto stacks = periscope({"stacks", host.pid_text()});
  auto record = periscope({"record", host.pid_text(), "-d", "1", "-o", dir.path() + "/cpu.folded"});
  EXPECT_TRUE(host.alive()) << host.process().stderr_text();
  EXPECT_EQ(host.command("handled"), "handled 0") << "the host's own handler ran for the agent's signal";
  EXPECT_NE((stacks.out + stacks.err).find("replaced"), std::string::npos) << stacks.out << stacks.err;
  EXPECT_EQ((stacks.out + stacks.err).find("did not answer"), std::string::npos) << stacks.out;
  EXPECT_NE(record.exit_code, 0) << record.err;
}

// Samples the hot worker at a high rate until the window holds some, then has the host change the
// sampling signal's action in the middle of the recording; returns the record's result.
RunResult record_while_host_changes_signals(Hostile& host, const SocketDir& dir, const std::string& change) {
  Process rec({cli_path(), "record", host.pid_text(), "-d", "30", "--rate", "4999", "-o", dir.path() + "/cpu.folded"},
              {});
  EXPECT_TRUE(wait_until([&] {
    auto status = periscope({"exec", "--json", host.pid_text(), "profile", "status"});
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    return j.is_object() && j.value("running", false) && j.value("samples", 0) > 500;
  }, 30s)) << rec.stderr_text();
  EXPECT_EQ(host.command(change), "ok");
  RunResult r;
  r.exit_code = rec.wait(20s).value_or(-1);
  r.err = rec.stderr_text();
  return r;
}

// The kernel sends the sampling signal by itself (perf_event): a check every tick left a window in
// which a host resetting its dispositions mid-profile died of "Real-time signal N".
TEST(HostileHost, ResetSignalsDuringARecordDoesNotKillTheHost) {
  SocketDir dir;
  Hostile host(dir);
  auto r = record_while_host_changes_signals(host, dir, "reset-signals");
  EXPECT_TRUE(host.alive()) << "the host died: " << host.process().stderr_text();
  EXPECT_EQ(r.exit_code, 6) << "a record that ended early says so: " << r.err;
  EXPECT_NE(r.err.find("replaced"), std::string::npos) << r.err;
  EXPECT_NE(slurp(dir.path() + "/cpu.folded").find("hostile_hot_loop"), std::string::npos)
      << "what was sampled before is written";
  EXPECT_EQ(host.command("handled"), "handled 0");
}

// CPU timers instead of perf events (hosts where perf_event is not allowed): the process's first
// POSIX timer has id 0, which the silencer's table once took for a free slot.
TEST(HostileHost, ResetSignalsDuringATimerRecordDoesNotKillTheHost) {
  SocketDir dir;
  Hostile host(dir, {{"PERISCOPE_PROFILE_CLOCK", "timer"}});
  auto r = record_while_host_changes_signals(host, dir, "reset-signals");
  EXPECT_TRUE(host.alive()) << "the host died: " << host.process().stderr_text();
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("per-thread CPU timer"), std::string::npos) << r.err;
}

TEST(HostileHost, OwnHandlersInstalledDuringARecordNeverReceiveTheAgentsSignal) {
  SocketDir dir;
  Hostile host(dir);
  auto r = record_while_host_changes_signals(host, dir, "own-handlers");
  EXPECT_TRUE(host.alive()) << host.process().stderr_text();
  EXPECT_EQ(host.command("handled"), "handled 0") << "a signal the agent asked for reached the host's handler";
  EXPECT_EQ(r.exit_code, 6) << r.err;
}

TEST(HostileHost, ThreadsThatBlockSignalsQueueNothingAndAreNamedInTheProfile) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("block-threads 3"), "ok");
  const long before = queued_signals(host.pid());
  std::atomic<bool> done{false};
  std::atomic<long> most{0};
  std::thread watch([&] {
    while (!done) {
      most = std::max(most.load(), queued_signals(host.pid()) - before);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const std::string out = dir.path() + "/cpu.folded";
  auto r = periscope({"record", host.pid_text(), "-d", "3", "--rate", "5000", "-o", out});
  done = true;
  watch.join();
  const long after = queued_signals(host.pid()) - before;
  EXPECT_TRUE(host.alive()) << host.process().stderr_text();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(most.load(), 100) << "signals queued while recording";
  EXPECT_LT(after, 5) << "signals left queued after the recording";
  EXPECT_NE(r.err.find("blocker"), std::string::npos) << "the unsampled threads are not named: " << r.err;
  std::ifstream folded(out);
  std::string all((std::istreambuf_iterator<char>(folded)), {});
  EXPECT_NE(all.find("hostile_hot_loop"), std::string::npos) << "the threads that can be sampled are";
}

TEST(HostileHost, StacksOfThreadsThatBlockSignalsComeByPtrace) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("block-threads 1"), "ok");
  auto r = periscope({"stacks", host.pid_text()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blocked_burn"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hostile_hot_loop"), std::string::npos) << r.out;
}

// glibc gives a thread a malloc arena of its own at its first malloc or free. The agent's
// pthread_create hook (crash report on: each new thread gets an alternate signal stack) handed its
// start data over on the heap and freed it on the new thread: every host thread got an arena,
// which every fork then locks, unlocks and copies (two page faults a fork each).
TEST(HostileHost, ThreadsThatNeverAllocateGetNoMallocArenaFromTheAgent) {
  if (agent_preload().find("tsan") != std::string::npos || agent_preload().find("asan") != std::string::npos) {
    GTEST_SKIP() << "the agent's pthread_create hook is not built into sanitizer builds (theirs comes first)";
  }
  SocketDir dir;
  Hostile host(dir);
  std::istringstream answer(host.command("idle-threads 4"));
  std::string word, alt_word;
  int before = -1, after = -1, alt_stacks = -1;
  ASSERT_TRUE(answer >> word >> before >> after >> alt_word >> alt_stacks) << answer.str();
  EXPECT_EQ(word, "arenas");
  EXPECT_EQ(alt_stacks, 4) << "the agent's pthread_create hook did not run: the test shows nothing";
  EXPECT_GE(before, 1);
  // Four threads with an arena each before; at most one more now (an agent thread's first
  // allocation may fall in the window).
  EXPECT_LE(after - before, 1) << "the host's idle threads got malloc arenas";
}

TEST(HostileHost, ForkAfterCloseAndReopenLeavesTheChildsFilesAlone) {
  SocketDir dir;
  Hostile host(dir);
  // A session open at fork time gives the agent more descriptors whose numbers the host reuses.
  RawConnection session(dir.socket_for(host.pid()));
  ASSERT_TRUE(session.connected());
  EXPECT_EQ(host.command("reopen-fork " + dir.path() + " 12"), "failures 0");
  EXPECT_TRUE(host.alive());
}

TEST(HostileHost, AWorkerForkedAtOnceByAForkedMasterGetsAnAgentToo) {
  SocketDir dir;
  Hostile host(dir);
  std::istringstream answer(host.command("daemon-with-worker"));
  std::string master_word, worker_word;
  pid_t master = 0, worker = 0;
  ASSERT_TRUE(answer >> master_word >> master >> worker_word >> worker) << answer.str();
  EXPECT_TRUE(wait_until([&] { return file_exists(dir.socket_for(master)); }))
      << "the master has no agent: " << host.process().stderr_text();
  EXPECT_TRUE(wait_until([&] { return file_exists(dir.socket_for(worker)); }))
      << "the worker has no agent: " << host.process().stderr_text();
  auto info = periscope({"exec", std::to_string(worker), "info"});
  EXPECT_EQ(info.exit_code, 0) << info.err << host.process().stderr_text();
}

TEST(HostileHost, AfterCloseFromTheAgentRestartsOnFreshDescriptorsAndIdles) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("closefrom"), "ok");
  // Within a second or two the agent notices and listens again.
  EXPECT_TRUE(wait_until([&] { return periscope({"exec", host.pid_text(), "info"}).exit_code == 0; }, 5s))
      << host.process().stderr_text();
  const double cpu_before = thread_cpu_seconds(host.pid(), "periscope");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a measurement window, not synchronization
  const double cpu_used = thread_cpu_seconds(host.pid(), "periscope") - cpu_before;
  EXPECT_LT(cpu_used, 0.1) << "the agent's thread spins";
  EXPECT_NE(host.process().stderr_text().find("restart"), std::string::npos) << host.process().stderr_text();
  EXPECT_TRUE(host.alive());
}

TEST(HostileHost, AHostThatReopensItsFilesThenServesGetsNoBytesFromTheAgentInThem) {
  SocketDir dir;
  Process host({target_path("request_target")}, {{"PERISCOPE_SOCKET_DIR", dir.path()}});
  ASSERT_EQ(host.read_line().value_or("").rfind("ready ", 0), 0u) << host.stderr_text();
  // Its first request wakes the agent's watchdog: never through a number that is the host's now.
  host.write_stdin("reopen-then-serve " + dir.path() + " 16\n");
  EXPECT_EQ(host.read_line().value_or("<no answer>"), "done dirty 0") << host.stderr_text();
}

TEST(HostileHost, AfterChrootTheAgentStillSeesEveryThread) {
  if (::geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  SocketDir dir;
  Hostile host(dir);
  const std::string jail = dir.path() + "/jail";
  ASSERT_EQ(::mkdir(jail.c_str(), 0755), 0);
  ASSERT_EQ(host.command("chroot " + jail), "ok");
  auto r = periscope({"stacks", host.pid_text()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hot-worker"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find(" 0 threads"), std::string::npos) << r.out;
}

TEST(HostileHost, AfterDroppingPrivilegesTheAgentAnswersAndLeavesNoFilesBehind) {
  if (::geteuid() != 0) GTEST_SKIP() << "dropping privileges needs root";
  SocketDir dir;
  const std::string socket = [&] {
    Hostile host(dir);
    EXPECT_EQ(host.command("setuid 65534"), "ok");
    auto r = periscope({"exec", host.pid_text(), "threads"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("hot-worker"), std::string::npos) << r.out;
    host.command("exit");
    EXPECT_EQ(host.process().wait(), 0);
    return dir.socket_for(host.pid());
  }();
  // The process could not remove its own files once it was nobody: the next viewer cleans them.
  periscope({"ps"}, dir.env());
  EXPECT_FALSE(file_exists(socket)) << "stale socket left: " << socket;
}

TEST(HostileHost, NamesWithTerminalEscapesArePrintedAsEscapesNotObeyed) {
  SocketDir dir;
  Hostile host(dir);
  ASSERT_EQ(host.command("escape-names"), "ok");
  for (const std::vector<std::string>& args : {std::vector<std::string>{"ps"}, {"stacks", host.pid_text()},
                                               {"exec", host.pid_text(), "threads"}}) {
    auto r = periscope(args, dir.env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "raw ESC from 'periscope " << args[0] << "'";
    EXPECT_EQ(r.out.find('\x07'), std::string::npos) << "raw BEL from 'periscope " << args[0] << "'";
    EXPECT_NE(r.out.find("\\x1b"), std::string::npos) << "shown as \\x1b: " << r.out;
  }
  auto json = periscope({"exec", "--json", host.pid_text(), "threads"});
  EXPECT_NE(json.out.find("\\u001b[2Jhot"), std::string::npos) << "JSON keeps the name, escaped: " << json.out;
}

}  // namespace
}  // namespace periscope::test
