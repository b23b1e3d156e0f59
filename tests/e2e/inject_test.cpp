// `periscope inject` and `eject` on programs started without the agent: an idle one, a busy
// multi-threaded one, python3; and every refusal (an agent already there, a static binary,
// another tracer, another user, no such process), after which the host runs on.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <thread>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

// Inject loads libperiscope.so into a process that has no sanitizer runtime: a sanitizer
// build's agent cannot be loaded there (the runtime must come first).
#define SKIP_UNLESS_INJECT_CAN_LOAD()                                                                       \
  do {                                                                                                      \
    SKIP_UNLESS_PTRACE_ALLOWED();                                                                           \
    if (agent_preload() != agent_path()) GTEST_SKIP() << "a sanitizer build's agent needs its runtime first"; \
  } while (0)

// A program started without the agent, talking over stdin/stdout.
class Plain {
 public:
  explicit Plain(std::vector<std::string> argv) : process_(std::move(argv), {{"LD_PRELOAD", ""}}) {
    auto ready = process_.read_line();
    EXPECT_TRUE(ready && *ready == "ready") << process_.stderr_text();
  }
  pid_t pid() const { return process_.pid(); }
  std::string pid_text() const { return std::to_string(process_.pid()); }
  std::string ask(const std::string& command) {
    process_.write_stdin(command + "\n");
    return process_.read_line().value_or("(no answer)");
  }
  long number(const std::string& command) {
    std::string answer = ask(command);
    return std::strtol(answer.c_str() + answer.find(' ') + 1, nullptr, 10);
  }
  bool alive() { return ::kill(process_.pid(), 0) == 0 && !process_.wait(0ms); }
  Process& process() { return process_; }

 private:
  Process process_;
};

int thread_count(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// The real-time signals from SIGRTMIN on (where the agent's are) that have a handler. glibc
// takes 32 and 33 for itself when the first thread starts: not ours to compare.
std::string realtime_handlers(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("SigCgt:", 0) != 0) continue;
    const unsigned long long caught = std::stoull(line.substr(7), nullptr, 16);
    std::string out;
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) {
      if (caught & (1ULL << (sig - 1))) out += std::to_string(sig) + " ";
    }
    return out;
  }
  return "?";
}

double rounds_per_second(Plain& target, std::chrono::milliseconds window) {
  const long before = target.number("rounds");
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);  // a measurement window, not synchronization
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(target.number("rounds") - before) / seconds;
}

TEST(Inject, AnIdleProgramGetsAWorkingAgentAndEjectLeavesItAsItWas) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Plain target({target_path("inject_target"), "0"});
  const int threads_before = thread_count(target.pid());
  const std::string handlers_before = realtime_handlers(target.pid());

  auto r = periscope({"inject", target.pid_text(), "--http", "127.0.0.1:0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(in read)"), std::string::npos) << "the main thread waits in read(2): " << r.out;
  auto info = periscope({"exec", target.pid_text(), "info"});
  EXPECT_NE(info.out.find("(injected)"), std::string::npos) << info.out << info.err;
  // As for a preloaded agent: listed by ps, metrics through the manhole and over HTTP.
  EXPECT_NE(periscope({"ps"}).out.find(target.pid_text()), std::string::npos);
  EXPECT_NE(periscope({"metrics", target.pid_text()}).out.find("process_cpu_seconds_total"), std::string::npos);
  const size_t http_at = info.out.find("http://127.0.0.1:");
  ASSERT_NE(http_at, std::string::npos) << "--http did not reach the agent: " << info.out;
  const std::string url = info.out.substr(http_at, info.out.find('/', http_at + 7) - http_at) + "/metrics";
  auto scrape = run({"/usr/bin/curl", "-sf", url});
  EXPECT_NE(scrape.out.find("process_cpu_seconds_total"), std::string::npos) << url << ": " << scrape.err;
  auto stacks = periscope({"stacks", target.pid_text()});
  EXPECT_NE(stacks.out.find("captured in-process by the agent"), std::string::npos) << stacks.out;
  EXPECT_NE(stacks.out.find("main"), std::string::npos) << stacks.out;
  auto record = periscope({"record", target.pid_text(), "--wall", "-d", "1", "-o", "/dev/null.folded"});
  EXPECT_NE(record.err.find("samples"), std::string::npos) << record.err;

  auto eject = periscope({"eject", target.pid_text()});
  EXPECT_EQ(eject.exit_code, 0) << eject.err;
  EXPECT_EQ(thread_count(target.pid()), threads_before) << "the agent's threads are still there";
  EXPECT_EQ(realtime_handlers(target.pid()), handlers_before) << "signal handlers not given back";
  auto gone = periscope({"exec", target.pid_text(), "info"});
  EXPECT_EQ(gone.exit_code, 3) << gone.out;
  // The read(2) the main thread was in went on as if nothing happened: no EINTR, and it answers.
  EXPECT_EQ(target.ask("eintr"), "eintr 0");

  auto again = periscope({"inject", target.pid_text()});
  EXPECT_EQ(again.exit_code, 0) << "inject after eject: " << again.err;
  EXPECT_EQ(periscope({"exec", target.pid_text(), "info"}).exit_code, 0);
}

// An agent loaded late does not own the program's allocation functions (its calls are bound to
// libc's): heap profiling points the loaded modules' GOT entries at the agent, says so, and sees
// the program's allocations from then on; the program runs on after eject.
TEST(Inject, HeapProfilingPatchesTheModulesAndSeesTheProgramsAllocations) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Process target({target_path("heap_target")}, {{"LD_PRELOAD", ""}});
  for (auto line = target.read_line(60s); line && *line != "ready"; line = target.read_line(60s)) {
  }
  const std::string pid = std::to_string(target.pid());
  ASSERT_EQ(periscope({"inject", pid}).exit_code, 0);
  auto start = periscope({"heap", pid, "--start", "--rate", "65536"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_NE(start.out.find("now point at it"), std::string::npos) << start.out;
  target.write_stdin("leak\n");
  EXPECT_EQ(target.read_line(10s).value_or(""), "ok leak");
  auto diff = periscope({"heap", pid, "--diff", "2", "-n", "3"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_NE(line_of(diff.out, 2).find("leak_slowly"), std::string::npos) << "the first row:\n" << diff.out;
  EXPECT_EQ(periscope({"heap", pid, "--stop"}).exit_code, 0);
  EXPECT_EQ(periscope({"eject", pid}).exit_code, 0);
  target.write_stdin("free\n");
  EXPECT_EQ(target.read_line(10s).value_or(""), "ok free") << "the program frees through the patched entries";
  target.write_stdin("quit\n");
  EXPECT_EQ(target.wait(10s), 0) << target.stderr_text();
}

TEST(Inject, ABusyProgramKeepsItsPaceAndIsProfiled) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Plain target({target_path("inject_target"), "2"});
  const double before = rounds_per_second(target, 500ms);
  auto r = periscope({"inject", target.pid_text()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string file = ::testing::TempDir() + "/inject_busy.folded";
  auto record = periscope({"record", target.pid_text(), "-d", "1", "-o", file});
  EXPECT_EQ(record.exit_code, 0) << record.err;
  EXPECT_NE(slurp(file).find("inject_target_work"), std::string::npos) << record.err;
  const double during = rounds_per_second(target, 500ms);
  EXPECT_EQ(periscope({"eject", target.pid_text()}).exit_code, 0);
  const double after = rounds_per_second(target, 500ms);
  std::cout << "rounds/s before " << before << ", with the injected agent " << during << ", after eject " << after
            << "; " << r.out << std::flush;
  // The workers were never stopped: they go on (the pace itself is bench/inject_bench.sh's).
  EXPECT_GT(during, 0);
  EXPECT_GT(after, 0);
  EXPECT_EQ(target.ask("eintr"), "eintr 0") << "a sleep or a read was interrupted";
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  std::istringstream fields(all.substr(all.rfind(')') + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(Inject, ThreadsThatOnlyAllocateAreNotStoppedInsideMalloc) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Plain target({target_path("inject_target"), "churn"});
  auto r = periscope({"inject", target.pid_text()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(in user code in " + target_path("inject_target")), std::string::npos) << r.out;
  EXPECT_EQ(periscope({"exec", target.pid_text(), "info"}).exit_code, 0);
  // A thread left holding malloc's lock would stop them all: their CPU time would stand still.
  const double before = process_cpu_seconds(target.pid());
  EXPECT_TRUE(wait_until([&] { return process_cpu_seconds(target.pid()) > before + 0.2; }, 5s))
      << "the allocating threads stopped after inject";
}

TEST(Inject, Python) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  const char* script =
      "import sys, threading\n"
      "def spin():\n"
      "    x = 0\n"
      "    while True:\n"
      "        x += 1\n"
      "threading.Thread(target=spin, daemon=True).start()\n"
      "print('ready', flush=True)\n"
      "for line in sys.stdin:\n"
      "    print('alive', flush=True)\n";
  Plain python({"/usr/bin/python3", "-c", script});
  auto r = periscope({"inject", python.pid_text()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string file = ::testing::TempDir() + "/inject_python.folded";
  auto record = periscope({"record", python.pid_text(), "-d", "1", "-o", file});
  EXPECT_EQ(record.exit_code, 0) << record.err;
  EXPECT_NE(slurp(file).find("_PyEval_EvalFrameDefault"), std::string::npos) << record.err << slurp(file).substr(0, 500);
  EXPECT_EQ(periscope({"eject", python.pid_text()}).exit_code, 0);
  EXPECT_EQ(python.ask("still there?"), "alive");
}

TEST(Inject, AFailureMidwayLeavesTheHostRunning) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Plain target({target_path("inject_target"), "0"});
  // Not a library at all: dlopen fails, and inject says what the loader said.
  auto not_elf = periscope({"inject", target.pid_text(), "--lib", source_path("README.md")});
  EXPECT_EQ(not_elf.exit_code, 1) << not_elf.out;
  EXPECT_NE(not_elf.err.find("dlopen in process " + target.pid_text()), std::string::npos) << not_elf.err;
  // A library, but not ours: loaded, then found to have no entry point.
  auto not_ours = periscope({"inject", target.pid_text(), "--lib", "/lib/x86_64-linux-gnu/libz.so.1"});
  EXPECT_EQ(not_ours.exit_code, 1) << not_ours.out;
  EXPECT_NE(not_ours.err.find("no periscope_inject_start"), std::string::npos) << not_ours.err;
  EXPECT_EQ(target.ask("eintr"), "eintr 0");
  EXPECT_EQ(periscope({"inject", target.pid_text()}).exit_code, 0) << "a real inject after the failed ones";
}

TEST(Inject, ALibraryTheProcessCannotSeeIsCopiedIntoIt) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "needs root and unshare";
  // The process runs in a mount namespace of its own where the build directory (with our
  // libperiscope.so) is hidden under an empty tmpfs; its program is a copy outside it.
  const std::string program = ::testing::TempDir() + "/inject_target_copy";
  ASSERT_EQ(run({"/bin/cp", target_path("inject_target"), program}).exit_code, 0);
  const std::string hidden = agent_path().substr(0, agent_path().rfind('/'));
  Plain target({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount -t tmpfs none '" + hidden + "' && exec '" + program + "' 0"});
  ASSERT_FALSE(file_exists("/proc/" + target.pid_text() + "/root" + agent_path())) << "the library is not hidden";
  auto r = periscope({"inject", target.pid_text()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(periscope({"exec", target.pid_text(), "info"}).exit_code, 0);
  EXPECT_EQ(target.ask("eintr"), "eintr 0");
  // The copy's name is gone once it is loaded.
  const std::string prefix = "libperiscope-inject-" + target.pid_text() + "-";
  if (DIR* d = ::opendir("/tmp")) {
    while (dirent* e = ::readdir(d)) EXPECT_NE(std::string(e->d_name).rfind(prefix, 0), 0u) << e->d_name << " left";
    ::closedir(d);
  }
}

TEST(Inject, AProcessWithAnAgentIsLeftAlone) {
  SocketDir dir;
  AgentTarget target(dir);
  auto r = periscope({"inject", std::to_string(target.pid())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already has a periscope agent"), std::string::npos) << r.out;
}

TEST(Inject, AStaticBinaryIsRefusedAndRunsOn) {
  Plain target({target_path("static_idle")});
  auto r = periscope({"inject", target.pid_text()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("statically linked"), std::string::npos) << r.err;
  EXPECT_TRUE(target.alive());
}

TEST(Inject, AnotherTracerIsNamed) {
  SKIP_UNLESS_PTRACE_ALLOWED();
  Plain target({target_path("inject_target"), "0"});
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr), 0) << std::strerror(errno);
  auto r = periscope({"inject", target.pid_text()});
  ::ptrace(PTRACE_DETACH, target.pid(), nullptr, nullptr);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("already traced by PID " + std::to_string(::getpid())), std::string::npos) << r.err;
  EXPECT_EQ(target.ask("eintr"), "eintr 0");
}

TEST(Inject, AnotherUsersProcessIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run periscope as another user";
  Plain target({target_path("inject_target"), "0"});
  auto r = periscope({"inject", target.pid_text()}, {}, 65534);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("belongs to uid 0"), std::string::npos) << r.err;
  EXPECT_TRUE(target.alive());
}

TEST(Inject, NoSuchProcess) {
  auto r = periscope({"inject", "999999999"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("no process"), std::string::npos) << r.err;
}

TEST(Inject, TheInjectFlagLoadsAnAgentForACommand) {
  SKIP_UNLESS_INJECT_CAN_LOAD();
  Plain target({target_path("inject_target"), "0"});
  auto plain = periscope({"exec", target.pid_text(), "info"});
  EXPECT_EQ(plain.exit_code, 3);
  EXPECT_NE(plain.err.find("periscope inject " + target.pid_text()), std::string::npos) << plain.err;
  auto r = periscope({"stacks", target.pid_text(), "--inject"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("captured in-process by the agent"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace periscope::test
