// `periscope top` on a real terminal (a pty): output processing and Ctrl-C work while it runs, and
// the terminal's settings are exactly as before once it ends.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sys/ioctl.h>
#include <vector>

#include "tests/e2e/harness.h"

namespace periscope::test {
namespace {

bool same_settings(const termios& a, const termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag &&
         std::memcmp(a.c_cc, b.c_cc, sizeof a.c_cc) == 0 && cfgetispeed(&a) == cfgetispeed(&b) &&
         cfgetospeed(&a) == cfgetospeed(&b);
}

// `periscope top PID` with its terminal on a pty whose master we hold.
class TopOnPty {
 public:
  TopOnPty(pid_t target, const SocketDir& dir) {
    if (::openpty(&master_, &slave_, nullptr, nullptr, nullptr) != 0) throw std::runtime_error("openpty");
    ::tcgetattr(slave_, &before_);
    const std::string cli = cli_path(), pid = std::to_string(target);
    std::vector<std::string> env{"PERISCOPE_SOCKET_DIR=" + dir.path(), "TERM=xterm", "PATH=/usr/bin:/bin"};
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    child_ = ::fork();
    if (child_ == 0) {
      ::setsid();
      ::ioctl(slave_, TIOCSCTTY, 0);  // Ctrl-C on this terminal signals top
      ::dup2(slave_, 0), ::dup2(slave_, 1), ::dup2(slave_, 2);
      ::close(master_);
      ::execle(cli.c_str(), cli.c_str(), "top", pid.c_str(), static_cast<char*>(nullptr), envp.data());
      ::_exit(127);
    }
  }
  ~TopOnPty() {
    if (child_ > 0 && !exited_) ::kill(child_, SIGKILL), ::waitpid(child_, nullptr, 0);
    ::close(master_);
    ::close(slave_);
  }
  // What top wrote until `marker` appears (or `patience` passes).
  std::string read_until(const std::string& marker, std::chrono::milliseconds patience = std::chrono::seconds(10)) {
    for (auto until = std::chrono::steady_clock::now() + patience;
         output_.find(marker) == std::string::npos && std::chrono::steady_clock::now() < until;) {
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n > 0) output_.append(buf, static_cast<size_t>(n));
    }
    return output_;
  }
  void type(const std::string& keys) { ASSERT_EQ(::write(master_, keys.data(), keys.size()), ssize_t(keys.size())); }
  // The exit status, or -1 when top did not end within 10 s.
  int wait() {
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (::waitpid(child_, &status, WNOHANG) == child_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      read_until("\x01", std::chrono::milliseconds(10));  // keep the pty drained meanwhile
    }
    return -1;
  }
  termios now() const {
    termios t{};
    ::tcgetattr(slave_, &t);
    return t;
  }
  const termios& before() const { return before_; }

 private:
  int master_ = -1, slave_ = -1;
  pid_t child_ = -1;
  bool exited_ = false;
  termios before_{};
  std::string output_;
};

TEST(TopTerminal, OutputProcessingAndCtrlCWorkAndTheTerminalIsRestored) {
  SocketDir dir;
  AgentTarget target(dir);
  TopOnPty top(target.pid(), dir);
  std::string screen = top.read_until("%Own");
  ASSERT_NE(screen.find("%Own"), std::string::npos) << screen;
  EXPECT_NE(screen.find("\r\n"), std::string::npos) << "newlines reach the terminal as CR LF (output processing on)";
  termios during = top.now();
  EXPECT_TRUE(during.c_oflag & OPOST) << "output processing stays on while top runs";
  EXPECT_TRUE(during.c_lflag & ISIG) << "Ctrl-C stays a signal while top runs";
  EXPECT_FALSE(during.c_lflag & ICANON) << "keys without Enter";
  top.type("\x03");  // Ctrl-C
  EXPECT_EQ(top.wait(), 0) << "top ends on Ctrl-C:\n" << top.read_until("\x01", std::chrono::milliseconds(0));
  EXPECT_TRUE(same_settings(top.before(), top.now())) << "stty is as it was before top";
  auto status = periscope({"exec", "--json", std::to_string(target.pid()), "profile", "status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["running"], false) << "top stopped sampling";
}

TEST(TopTerminal, QuitKeyEndsItAndRestoresTheTerminal) {
  SocketDir dir;
  AgentTarget target(dir);
  TopOnPty top(target.pid(), dir);
  ASSERT_NE(top.read_until("%Own").find("%Own"), std::string::npos);
  top.type("q");
  EXPECT_EQ(top.wait(), 0);
  EXPECT_TRUE(same_settings(top.before(), top.now()));
}

}  // namespace
}  // namespace periscope::test
