#include "profiler/signal_delivery.h"

#include <cstdlib>
#include <cstring>

#include "profiler/proc_reader.h"

namespace periscope {

namespace {

// The bit of `sig` in a /proc status mask line ("SigBlk:\t0000000000000000").
bool mask_has(const std::string& status, const char* key, int sig) {
  auto pos = status.find(key);
  if (pos == std::string::npos) return false;
  unsigned long long mask = std::strtoull(status.c_str() + pos + std::strlen(key), nullptr, 16);
  return (mask >> (sig - 1)) & 1ULL;
}

}  // namespace

bool handler_installed(int sig, SignalHandler handler) {
  struct sigaction current {};
  return sig > 0 && ::sigaction(sig, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
         current.sa_sigaction == handler;
}

std::string replaced_handler_words(int sig) {
  struct sigaction current {};
  std::string now = "something else";
  if (::sigaction(sig, nullptr, &current) == 0) {
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL) {
      now = "the default action, which would kill the process";
    } else if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) {
      now = "ignored";
    } else {
      now = "a handler of the host's own";
    }
  }
  return "the host replaced periscope's handler for signal " + std::to_string(sig) + " (it is now " + now + ")";
}

std::optional<ThreadSignalState> thread_signal_state(pid_t tid, int sig) {
  auto status = proc::read_file("/proc/self/task/" + std::to_string(tid) + "/status", 8192);
  if (!status) return std::nullopt;
  return ThreadSignalState{mask_has(*status, "SigBlk:", sig),
                           mask_has(*status, "SigPnd:", sig) || mask_has(*status, "ShdPnd:", sig),
                           status->find("State:\tT") != std::string::npos ||
                               status->find("State:\tt") != std::string::npos};
}

long queued_signals_of_uid() {
  auto status = proc::read_file("/proc/self/status", 8192);
  if (!status) return -1;
  auto pos = status->find("SigQ:");
  return pos == std::string::npos ? -1 : std::strtol(status->c_str() + pos + 5, nullptr, 10);
}

bool discard_queued(int sig, SignalHandler handler) {
  struct sigaction ours {};
  if (::sigaction(sig, nullptr, &ours) != 0 || !(ours.sa_flags & SA_SIGINFO) || ours.sa_sigaction != handler) {
    return false;
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (::sigaction(sig, &ignore, nullptr) != 0) return false;
  ::sigaction(sig, &ours, nullptr);
  return true;
}

}  // namespace periscope
