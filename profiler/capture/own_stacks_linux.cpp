#include "profiler/capture/own_stacks.h"

#include <algorithm>
#include <unistd.h>

#include "profiler/proc_reader.h"
#include "profiler/capture/stack_capture.h"
#include "profiler/thread_list.h"

namespace periscope {

std::vector<ThreadStack> capture_own_stacks(const std::vector<pid_t>& only, std::chrono::milliseconds timeout,
                                            Symbolizer* symbolizer) {
  auto threads = list_threads(::getpid());
  std::vector<ThreadStack> stacks;
  for (const auto& t : threads) {
    if (!only.empty() && std::find(only.begin(), only.end(), t.tid) == only.end()) continue;
    stacks.push_back({t.tid, t.name, proc::state_name(t.state), {}, false, {}, {}, {}});
  }
  for (pid_t wanted : only) {
    bool found = std::any_of(stacks.begin(), stacks.end(), [&](const ThreadStack& s) { return s.tid == wanted; });
    if (!found) stacks.push_back({wanted, "", "", {}, false, "no such thread in this process", {}, {}});
  }
  std::vector<pid_t> tids;
  for (const auto& s : stacks) {
    if (s.error.empty()) tids.push_back(s.tid);
  }
  auto captured = StackCapture::capture(tids, timeout);
  for (auto& c : captured) {
    auto it = std::find_if(stacks.begin(), stacks.end(), [&](const ThreadStack& s) { return s.tid == c.tid; });
    if (c.status != CapturedStack::Status::kOk) {
      it->error = c.detail;
      continue;
    }
    if (symbolizer) it->frames = symbolize_captured(c.pcs, *symbolizer);
    else it->pcs = std::move(c.pcs);
    it->truncated = c.truncated;
  }
  return stacks;
}

}  // namespace periscope
