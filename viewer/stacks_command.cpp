// `periscope stacks PID`: every thread's stack. Through the agent when the process has one (it
// captures in-process, no stopping); otherwise by ptrace, stopping each thread only while its
// stack is read. The output says which way was used.
#include <algorithm>
#include <cstdio>

#include "protocol/protocol.h"
#include "profiler/process_info.h"
#include "profiler/remote_stacks.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/discovery.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

std::vector<ThreadStack> call_stacks(Client& client, const std::vector<pid_t>& threads, bool raw) {
  std::vector<std::string> words{"stacks"};
  if (raw) words.push_back("--raw");
  for (pid_t t : threads) words.push_back(std::to_string(t));
  auto frame = client.call_checked(words);
  try {
    return stacks_from_json(frame["data"]);
  } catch (const std::exception& e) {
    throw CliError(kExitConnection, std::string("malformed stacks from the agent: ") + e.what());
  }
}

// The agent captures addresses; the viewer symbolizes them from the same files, so the debug
// information never enters the host's memory. Where the viewer cannot read the process's
// modules, the agent symbolizes (bounded, released when idle).
std::vector<ThreadStack> via_agent(const std::string& socket, pid_t pid, const std::vector<pid_t>& threads,
                                   const CommonOptions& options) {
  Client client = Client::connect_to_path(socket, pid, options.timeout);
  Symbolizer symbolizer(pid);
  if (!symbolizer.error().empty()) return call_stacks(client, threads, false);
  auto stacks = call_stacks(client, threads, true);
  for (auto& s : stacks) {
    s.frames = symbolize_captured(s.pcs, symbolizer);
    s.pcs.clear();
  }
  return stacks;
}

bool ptrace_may_help(const ThreadStack& s) {
  return !s.error.empty() && s.error.find("exited") == std::string::npos &&
         s.error.find("no such thread") == std::string::npos;
}

// Threads the agent could not ask (the host replaced its handler, they block its signal, they
// did not answer) are read by ptrace, one at a time, when ptrace is allowed.
void fill_by_ptrace(pid_t pid, std::vector<ThreadStack>& stacks) {
  std::vector<pid_t> missing;
  for (const auto& s : stacks) {
    if (ptrace_may_help(s)) missing.push_back(s.tid);
  }
  if (missing.empty()) return;
  auto remote = capture_remote_stacks(pid, missing, kMaxStackDepth);
  for (auto& s : stacks) {
    if (!ptrace_may_help(s)) continue;
    auto it = std::find_if(remote.stacks.begin(), remote.stacks.end(),
                           [&](const ThreadStack& r) { return r.tid == s.tid && r.error.empty(); });
    if (it == remote.stacks.end()) {
      if (!thread_exists(pid, s.tid)) s.error = "exited during capture";  // e.g. blocked signals while exiting
      else if (!remote.error.empty()) s.error += " (and by ptrace: " + remote.error + ")";
      continue;
    }
    s.note = "read by ptrace; by signal: " + s.error;
    s.frames = std::move(it->frames);
    s.truncated = it->truncated;
    s.error.clear();
  }
}

}  // namespace

int run_stacks(pid_t pid, const StacksOptions& request, const CommonOptions& options) {
  const auto& threads = request.threads;
  if (!process_exists(pid)) throw CliError(kExitNoProcess, "no process with PID " + std::to_string(pid));
  auto socket = request.force_ptrace ? std::nullopt : find_agent_socket(pid);
  std::vector<ThreadStack> stacks;
  std::string method;
  if (socket) {
    stacks = via_agent(*socket, pid, threads, options);
    fill_by_ptrace(pid, stacks);
    method = "agent";
  } else {
    auto remote = capture_remote_stacks(pid, threads, kMaxStackDepth);
    if (!remote.error.empty()) {
      throw CliError(remote.permission_denied ? kExitPermission : kExitNoProcess, remote.error);
    }
    stacks = std::move(remote.stacks);
    method = "ptrace";
  }
  if (options.json) {
    nlohmann::json out = stacks_to_json(stacks);
    out["pid"] = pid;
    out["method"] = method;
    std::printf("%s\n", protocol::dump_json(out, 2).c_str());
    return kExitOk;
  }
  auto info = read_process_info(pid);
  std::printf("Process %d (%s): %zu thread%s, captured %s\n\n", pid, info ? safe_for_terminal(info->name).c_str() : "?", stacks.size(),
              stacks.size() == 1 ? "" : "s",
              method == "agent" ? "in-process by the agent" : "by ptrace (each thread stopped while read)");
  print_untrusted(render_stacks(stacks, request.full_names));
  return kExitOk;
}

}  // namespace periscope::viewer
