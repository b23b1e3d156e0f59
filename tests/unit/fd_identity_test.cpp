// Descriptors known by identity: a number the host closed and reused is not ours any more.
#include <gtest/gtest.h>
#include <cstdio>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <optional>
#include <thread>
#include <unistd.h>

#include "profiler/fd_identity.h"

namespace periscope {
namespace {

TEST(FdIdentity, AFileStaysItselfUntilItsNumberIsReused) {
  FILE* a = std::tmpfile();
  const int fd = ::fileno(a);
  auto id = FdIdentity::of(fd);
  ASSERT_TRUE(id);
  EXPECT_FALSE(id->anonymous());
  EXPECT_TRUE(id->still_at(fd));
  FILE* b = std::tmpfile();  // another file...
  ASSERT_EQ(::dup2(::fileno(b), fd), fd);  // ...now on the same number
  EXPECT_FALSE(id->still_at(fd));
  std::fclose(b);
  std::fclose(a);
  EXPECT_FALSE(id->still_at(fd)) << "a closed number is nobody's";
}

TEST(FdIdentity, AnonymousInodesAreToldApartByKind) {
  const int event = ::eventfd(0, EFD_CLOEXEC);
  auto id = FdIdentity::of(event);
  ASSERT_TRUE(id);
  EXPECT_TRUE(id->anonymous());
  EXPECT_STREQ(id->kind, "anon_inode:[eventfd]");
  EXPECT_TRUE(fd_is_kind(event, "anon_inode:[eventfd]"));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_EQ(::dup2(pipe_fds[0], event), event);  // the host reuses the number for a pipe
  EXPECT_FALSE(id->still_at(event));
  EXPECT_FALSE(fd_is_kind(event, "anon_inode:[eventfd]"));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ::close(event);
}

// After closefrom the host opens its own eventfd (or epoll) and gets the agent's old number: same
// inode, same kind. It is still not the agent's, and the agent must never close or use it.
TEST(FdIdentity, AHostsNewEventfdOnTheAgentsOldNumberIsNotTheAgents) {
  const int agents = ::eventfd(0, EFD_CLOEXEC);
  auto id = FdIdentity::of(agents);
  ASSERT_TRUE(id);
  EXPECT_TRUE(id->still_at(agents));
  ::close(agents);
  const int hosts = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_EQ(hosts, agents) << "the lowest free number is reused";
  EXPECT_FALSE(id->still_at(hosts));
  const int dup_of_hosts = ::dup(hosts);
  EXPECT_TRUE(FdIdentity::of(hosts)->still_at(dup_of_hosts)) << "a dup is the same description, the same owner";
  ::close(dup_of_hosts);
  ::close(hosts);
}

TEST(FdIdentity, APerfEventKeepsTheSignalItWasGiven) {
  const int event = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_EQ(::fcntl(event, F_SETSIG, 40), 0);  // as the sampler sets its perf events'
  auto id = FdIdentity::of(event);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->mark, 40) << "a signal already set is the mark; it is not replaced";
  EXPECT_TRUE(id->still_at(event));
  ::close(event);
}

// The mark must outlive whoever set it: a fork child closes its parent's agent descriptors after
// the parent has exited (a daemonizing redis), and the agent's starter thread ends at once.
TEST(FdIdentity, TheMarkOutlivesTheThreadThatSetIt) {
  const int event = ::eventfd(0, EFD_CLOEXEC);
  std::optional<FdIdentity> id;
  std::thread([&] { id = FdIdentity::of(event); }).join();
  ASSERT_TRUE(id);
  EXPECT_TRUE(id->still_at(event));
  ::close(event);
}

}  // namespace
}  // namespace periscope
