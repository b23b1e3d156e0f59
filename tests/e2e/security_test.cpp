// Who may talk to an agent: its own uid or root. Files are private; other users are refused
// even where the file permissions would have let them through.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

int mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_mode & 0777;
}

TEST(Security, SocketDirectoryIs0700AndSocket0600) {
  SocketDir dir;
  std::string nested = dir.path() + "/deeper/sockets";
  AgentTarget target(dir, {{"PERISCOPE_SOCKET_DIR", nested}});
  std::string socket = target.socket();
  ASSERT_EQ(socket, nested + "/" + std::to_string(target.pid()) + ".sock");
  EXPECT_EQ(mode_of(nested), 0700);
  EXPECT_EQ(mode_of(socket), 0600);
}

TEST(Security, DirectoryOwnedBySomeoneElseIsNotUsed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a directory owned by another user";
  SocketDir dir;
  std::string foreign = dir.path() + "/foreign";
  ASSERT_EQ(::mkdir(foreign.c_str(), 0700), 0);
  ASSERT_EQ(::chown(foreign.c_str(), kNobody, kNobody), 0);
  Process p({target_path("host_target")}, {{"LD_PRELOAD", agent_preload()}, {"PERISCOPE_SOCKET_DIR", foreign}});
  ASSERT_TRUE(p.read_line());
  ASSERT_TRUE(wait_until([&] { return p.stderr_text().find("agent not started") != std::string::npos; }));
  EXPECT_NE(p.stderr_text().find("belongs to uid 65534"), std::string::npos) << p.stderr_text();
  p.write_stdin("list-fds\n");  // the host keeps working
  EXPECT_TRUE(p.read_line());
}

TEST(Security, PeerWithAnotherUidIsRefusedAndLoggedOnce) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  SocketDir dir;
  AgentTarget target(dir);
  // Open the file permissions so the connection reaches the agent: the uid check is what must hold.
  ASSERT_EQ(::chmod(dir.path().c_str(), 0711), 0);
  ASSERT_EQ(::chmod(target.socket().c_str(), 0666), 0);
  for (int attempt = 0; attempt < 2; ++attempt) {
    RawConnection c(target.socket(), kNobody);
    ASSERT_TRUE(c.connected()) << "connect as nobody: errno " << c.connect_errno();
    std::string reply = c.read_line();
    EXPECT_EQ(reply, "error: permission denied: peer uid 65534 is neither the process's uid 0 nor root\n");
    EXPECT_TRUE(c.closed_by_peer());
  }
  std::string log = target.process().stderr_text();
  EXPECT_NE(log.find("refused manhole connection"), std::string::npos) << log;
  EXPECT_EQ(log.find("refused manhole connection"), log.rfind("refused manhole connection")) << "logged once:\n" << log;
  auto r = periscope({"exec", std::to_string(target.pid()), "info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 refused"), std::string::npos) << r.out;
}

TEST(Security, ViewerRunByAnotherUserGetsPermissionDenied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the viewer as another user";
  SocketDir dir;
  AgentTarget target(dir);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // let nobody see the socket file, not use it
  auto r = periscope({"exec", std::to_string(target.pid()), "info"}, {}, kNobody);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("uid 0"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace periscope::test
