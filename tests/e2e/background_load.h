// Client traffic against a real server on a thread of its own, while a test looks at it.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "tests/e2e/real_servers.h"

namespace periscope::test {

// Client traffic in rounds on a thread of its own until stopped (at most a minute of it).
class BackgroundLoad {
 public:
  explicit BackgroundLoad(RealServer& server)
      : thread_([this, &server] {
          auto give_up = std::chrono::steady_clock::now() + 60s;
          while (!stop_ && std::chrono::steady_clock::now() < give_up) {
            std::string error = server.load();
            std::lock_guard lock(mutex_);
            ++rounds_;
            if (!error.empty()) errors_ += "round " + std::to_string(rounds_) + ": " + error + "\n";
          }
        }) {}
  ~BackgroundLoad() { (void)stop(); }
  // What went wrong in any round, or empty.
  std::string stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return errors_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  int rounds_ = 0;
  std::string errors_;
  std::thread thread_;
};

}  // namespace periscope::test
