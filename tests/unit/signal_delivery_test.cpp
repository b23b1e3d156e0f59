// Knowing before signalling: is our handler still installed, does the thread block the signal,
// and can what was queued to a blocking thread be dropped.
#include <gtest/gtest.h>
#include <atomic>
#include <csignal>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "profiler/signal_delivery.h"

namespace periscope {
namespace {

void test_handler(int, siginfo_t*, void*) {}  // async-signal-safe: does nothing

int install_test_handler() {
  const int sig = SIGRTMAX - 1;
  struct sigaction action {};
  action.sa_sigaction = test_handler;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  EXPECT_EQ(::sigaction(sig, &action, nullptr), 0);
  return sig;
}

TEST(SignalDelivery, AReplacedHandlerIsSeenAndNamed) {
  const int sig = install_test_handler();
  EXPECT_TRUE(handler_installed(sig, test_handler));
  std::signal(sig, SIG_DFL);  // what a daemon does after start
  EXPECT_FALSE(handler_installed(sig, test_handler));
  EXPECT_NE(replaced_handler_words(sig).find("default action, which would kill"), std::string::npos);
  std::signal(sig, SIG_IGN);
  EXPECT_NE(replaced_handler_words(sig).find("ignored"), std::string::npos);
  std::signal(sig, SIG_DFL);
}

TEST(SignalDelivery, ABlockingThreadIsSeenAndWhatWasQueuedToItIsDropped) {
  const int sig = install_test_handler();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread blocker([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (tid == 0) std::this_thread::yield();
  auto state = thread_signal_state(tid, sig);
  ASSERT_TRUE(state);
  EXPECT_TRUE(state->blocked);
  EXPECT_FALSE(state->pending);
  for (int i = 0; i < 10; ++i) ::syscall(SYS_tgkill, ::getpid(), tid.load(), sig);
  EXPECT_TRUE(thread_signal_state(tid, sig)->pending);
  EXPECT_TRUE(discard_queued(sig, test_handler));
  EXPECT_FALSE(thread_signal_state(tid, sig)->pending) << "queued signals outlived the discard";
  EXPECT_TRUE(handler_installed(sig, test_handler)) << "the handler is back after the discard";
  stop = true;
  blocker.join();
  std::signal(sig, SIG_DFL);
  EXPECT_FALSE(discard_queued(sig, test_handler)) << "never touches a handler that is not ours";
}

TEST(SignalDelivery, AThreadThatIsGoneHasNoState) { EXPECT_FALSE(thread_signal_state(999999999, SIGRTMAX)); }

}  // namespace
}  // namespace periscope
