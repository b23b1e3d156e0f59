// Crash last words: a host that crashes (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) writes a report
// naming the signal, where it happened, the requests in flight and the threads; then it dies
// exactly as without the agent (signal, core dump); a handler the host installed before the agent
// still runs; PERISCOPE_CRASH_LOG gets the report too; `periscope view-crash` names the functions.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

struct Crash {
  bool signaled = false;
  int signal = 0;
  bool core = false;
  int exit_code = -1;
  std::string err;
};

// Runs `argv` in `dir` with cores allowed (core_pattern permitting), stderr captured.
Crash run_crash(const std::vector<std::string>& argv, const Env& env, const std::string& dir) {
  const std::string err_path = dir + "/stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(120);
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    ::setrlimit(RLIMIT_CORE, &unlimited);
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDERR_FILENO);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    for (const auto& [k, v] : env) {
      if (v.empty()) ::unsetenv(k.c_str());
      else ::setenv(k.c_str(), v.c_str(), 1);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Crash c;
  c.signaled = WIFSIGNALED(status);
  c.signal = c.signaled ? WTERMSIG(status) : 0;
  c.core = c.signaled && WCOREDUMP(status);
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  c.err = slurp(err_path);
  return c;
}

struct Case {
  std::string mode;
  int signal;
  bool linked;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return info.param.mode + (info.param.linked ? "_linked" : "_preloaded");
}

class CrashReport : public testing::TestWithParam<Case> {
 protected:
  std::string program() const { return target_path(GetParam().linked ? "crash_target_linked" : "crash_target_plain"); }
  // The environment with the agent, and the one without it, for the same program.
  Env with_agent() const {
    Env env = dir_.env();
    if (!GetParam().linked) env["LD_PRELOAD"] = agent_preload();
    return env;
  }
  Env without_agent() const {
    Env env = dir_.env();
    if (GetParam().linked) env["PERISCOPE_DISABLE"] = "1";
    else env["LD_PRELOAD"] = agent_preload() == agent_path() ? "" : agent_preload().substr(0, agent_preload().find(' '));
    return env;
  }
  std::string scratch() const { return dir_.path(); }

  SocketDir dir_;
};

TEST_P(CrashReport, NamesTheSignalAndDiesAsWithoutTheAgent) {
  if (agent_preload() != agent_path()) GTEST_SKIP() << "the sanitizer runtime reports crashes itself";
  const Case& c = GetParam();
  const std::string log = scratch() + "/crash.log";
  Env env = with_agent();
  env["PERISCOPE_CRASH_LOG"] = log;
  Crash with = run_crash({program(), c.mode}, env, scratch());
  Crash without = run_crash({program(), c.mode}, without_agent(), scratch());

  EXPECT_TRUE(without.signaled) << without.err;
  EXPECT_EQ(with.signaled, without.signaled) << with.err;
  EXPECT_EQ(with.signal, without.signal) << with.err;
  EXPECT_EQ(with.signal, c.signal) << with.err;
  EXPECT_EQ(with.core, without.core) << "a core with the agent: " << with.core << ", without: " << without.core;
  EXPECT_EQ(with.exit_code, without.exit_code);

  EXPECT_NE(with.err.find("periscope: crash report"), std::string::npos) << with.err;
  const std::string names[] = {"", "", "", "", "SIGILL", "", "SIGABRT", "SIGBUS", "SIGFPE", "", "", "SIGSEGV"};
  EXPECT_NE(with.err.find("got " + names[c.signal]), std::string::npos) << with.err;
  EXPECT_NE(with.err.find(program() + "+0x"), std::string::npos) << "no frame in the program:\n" << with.err;
  EXPECT_NE(with.err.find("<- crashed"), std::string::npos) << with.err;
  EXPECT_NE(with.err.find("end of crash report"), std::string::npos) << with.err;
  if (c.linked) {
    EXPECT_NE(with.err.find("GET /crash  for "), std::string::npos) << with.err;
  }
  EXPECT_EQ(without.err.find("crash report"), std::string::npos) << without.err;
  EXPECT_NE(slurp(log).find("periscope: crash report"), std::string::npos) << "PERISCOPE_CRASH_LOG";

  // The other threads' stacks: one waiting, one that blocks every signal (named, no stack).
  EXPECT_NE(with.err.find("\"bystander\":\n    #0 0x"), std::string::npos) << with.err;
  EXPECT_NE(with.err.find("\"deaf\": blocks the capture signal; no stack"), std::string::npos) << with.err;

  // view-crash names the function that faulted, and where the bystander waited.
  auto view = periscope({"view-crash", log});
  EXPECT_EQ(view.exit_code, 0) << view.err;
  const bool overflow = c.mode.rfind("overflow", 0) == 0;  // its 64 frames are all the recursion
  EXPECT_NE(view.out.find(overflow ? "crash_target_recurse" : "crash_target_fault"), std::string::npos) << view.out;
  EXPECT_NE(view.out.find("crash_target_bystander"), std::string::npos) << view.out;
}

TEST_P(CrashReport, AHandlerTheHostInstalledFirstStillRuns) {
  if (agent_preload() != agent_path()) GTEST_SKIP() << "the sanitizer runtime reports crashes itself";
  const Case& c = GetParam();
  if (!c.linked) GTEST_SKIP() << "a preloaded agent starts before main(): the host's handler comes after it";
  Crash with = run_crash({program(), c.mode, "handler"}, with_agent(), scratch());
  if (c.mode.rfind("overflow", 0) == 0) {
    // The host's handler has no alternate stack: on an exhausted stack it cannot run, agent or
    // not, and the process dies of the signal; the agent's (on its alternate stack) reports first.
    EXPECT_TRUE(with.signaled && with.signal == SIGSEGV) << with.err;
    EXPECT_NE(with.err.find("periscope: crash report"), std::string::npos) << with.err;
    return;
  }
  EXPECT_EQ(with.exit_code, 42) << with.err;
  EXPECT_NE(with.err.find("host handler ran"), std::string::npos) << with.err;
  EXPECT_NE(with.err.find("periscope: crash report"), std::string::npos) << with.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, CrashReport,
                         testing::Values(Case{"segv", SIGSEGV, true}, Case{"bus", SIGBUS, true},
                                         Case{"ill", SIGILL, true}, Case{"fpe", SIGFPE, true},
                                         Case{"abort", SIGABRT, true}, Case{"segv", SIGSEGV, false},
                                         Case{"bus", SIGBUS, false}, Case{"ill", SIGILL, false},
                                         Case{"fpe", SIGFPE, false}, Case{"abort", SIGABRT, false},
                                         // Stack overflow: the report runs on an alternate stack.
                                         Case{"overflow", SIGSEGV, true}, Case{"overflow_thread", SIGSEGV, true},
                                         Case{"overflow", SIGSEGV, false}, Case{"overflow_thread", SIGSEGV, false}),
                         case_name);

TEST(CrashReport, OffLeavesTheSignalsAlone) {
  if (agent_preload() != agent_path()) GTEST_SKIP() << "the sanitizer runtime reports crashes itself";
  SocketDir dir;
  Env env = dir.env();
  env["PERISCOPE_CRASH"] = "off";
  Crash c = run_crash({target_path("crash_target_linked"), "segv"}, env, dir.path());
  EXPECT_TRUE(c.signaled);
  EXPECT_EQ(c.err.find("crash report"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace periscope::test
