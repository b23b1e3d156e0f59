// `periscope inject` into real Debian servers started without the agent, under client load: the
// server keeps serving with no failed request, the injected agent answers stacks and record as a
// preloaded one does, and after `eject` the server still serves and shuts down cleanly.
#include <gtest/gtest.h>

#include <iostream>

#include "tests/e2e/background_load.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/real_servers.h"
#include "tests/e2e/server_checks.h"
#include "tests/e2e/server_process.h"

namespace periscope::test {
namespace {

class InjectRealServerTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = why_real_server_cannot_run(GetParam()); !why.empty()) GTEST_SKIP() << why;
    if (agent_preload() != agent_path()) {
      GTEST_SKIP() << "a sanitizer build's agent needs its runtime loaded first, which inject cannot do";
    }
    if (!may_ptrace_siblings()) GTEST_SKIP() << "inject needs ptrace (root or kernel.yama.ptrace_scope 0)";
    server_ = start_real_server(GetParam(), sockets_, /*preload_agent=*/false);
  }
  void TearDown() override {
    if (!server_) return;
    std::string why = server_->stop();
    EXPECT_TRUE(why.empty()) << GetParam() << " did not shut down cleanly after inject and eject: " << why;
  }

  SocketDir sockets_;
  std::unique_ptr<RealServer> server_;
};

TEST_P(InjectRealServerTest, ServesThroughInjectRecordAndEject) {
  const pid_t pid = server_->serving_pid();
  const std::string pid_text = std::to_string(pid);
  ASSERT_FALSE(agents_listed().count(pid)) << "started without the agent, yet it has one";
  std::string warmup = server_->load();
  ASSERT_TRUE(warmup.empty()) << warmup;
  BackgroundLoad load(*server_);

  // As an operator would: the agent puts its socket in the default directory of the server's uid.
  auto injected = periscope({"inject", pid_text});
  std::cout << "[" << GetParam() << "] " << injected.out << injected.err << std::flush;
  ASSERT_EQ(injected.exit_code, 0) << injected.err << "\n" << server_->log_tail();
  EXPECT_NE(injected.out.find("stopped"), std::string::npos) << injected.out;

  auto stacks = periscope({"stacks", pid_text});
  EXPECT_EQ(stacks.exit_code, 0) << stacks.err;
  EXPECT_NE(stacks.out.find("captured in-process by the agent"), std::string::npos) << stacks.out.substr(0, 300);

  const std::string file = sockets_.path() + "/injected.folded";
  auto record = periscope({"record", pid_text, "-d", "2", "-o", file});
  EXPECT_EQ(record.exit_code, 0) << record.err;
  FoldedProfile profile = read_folded(file);
  bool hot = false;
  for (const auto& [function, samples] : profile.functions) {
    for (const auto& hint : server_->hot_functions()) hot |= function.find(hint) != std::string::npos;
  }
  EXPECT_TRUE(hot) << "no hot function of " << GetParam() << " in " << profile.samples << " samples:\n  "
                   << join(profile.heaviest(10), "\n  ");

  auto ejected = periscope({"eject", pid_text});
  EXPECT_EQ(ejected.exit_code, 0) << ejected.err;
  EXPECT_FALSE(agents_listed().count(pid)) << "the agent still answers after eject";
  std::string load_errors = load.stop();
  EXPECT_TRUE(load_errors.empty()) << GetParam() << " failed requests during inject/record/eject:\n" << load_errors;
  std::string after = server_->load();
  EXPECT_TRUE(after.empty()) << "after eject: " << after;
}

INSTANTIATE_TEST_SUITE_P(RealServer, InjectRealServerTest, testing::ValuesIn(real_server_names()),
                         [](const testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace periscope::test
