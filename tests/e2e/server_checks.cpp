#include "tests/e2e/server_checks.h"

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "tests/e2e/harness.h"

namespace periscope::test {

using nlohmann::json;

std::map<pid_t, json> agents_listed() {
  auto r = periscope({"ps", "--json"});
  if (r.exit_code != 0) {
    throw std::runtime_error("periscope ps --json failed (" + std::to_string(r.exit_code) + "): " + r.err);
  }
  std::map<pid_t, json> out;
  for (const auto& row : json::parse(r.out)) out[row["pid"].get<pid_t>()] = row;
  return out;
}

json stacks_json(pid_t pid, bool ptrace) {
  std::vector<std::string> args{"stacks", std::to_string(pid), "--json"};
  if (ptrace) args.push_back("--ptrace");
  auto r = periscope(args);
  if (r.exit_code != 0) {
    throw std::runtime_error("periscope " + join(args, " ") + " failed (exit code " + std::to_string(r.exit_code) +
                             "): " + r.err);
  }
  return json::parse(r.out);
}

namespace {

// The C library's own frames (syscall wrappers, futex waits) say where a thread waits, not what
// it is doing; the dynamic loader's and the vDSO's likewise.
bool in_libc(const std::string& module) {
  return module.rfind("libc.so", 0) == 0 || module.rfind("libc-", 0) == 0 || module.rfind("ld-linux", 0) == 0 ||
         module.rfind("libpthread", 0) == 0 || module.find("vdso") != std::string::npos;
}

struct Top {
  std::string function;
  size_t index = 0;
};

// The innermost named frame outside libc, else the innermost named frame.
Top top_function(const json& thread) {
  const auto& frames = thread["frames"];
  std::optional<Top> any;
  for (size_t i = 0; i < frames.size(); ++i) {
    std::string function = frames[i].value("function", "");
    if (function.empty()) continue;
    if (!in_libc(frames[i].value("module", ""))) return {function, i};
    if (!any) any = Top{function, i};
  }
  return any.value_or(Top{});
}

bool has_function_near_top(const json& thread, const Top& top) {
  // ptrace and the agent may see a few frames more or less near the top (inlined frames, the
  // signal frame's neighbour); the function must still be among the first few.
  size_t window = std::max<size_t>(top.index + 4, 8);
  const auto& frames = thread["frames"];
  for (size_t i = 0; i < frames.size() && i < window; ++i) {
    if (frames[i].value("function", "") == top.function) return true;
  }
  return false;
}

std::string first_functions(const json& thread, size_t count) {
  std::vector<std::string> names;
  for (const auto& frame : thread["frames"]) {
    if (names.size() == count) break;
    std::string function = frame.value("function", "");
    names.push_back(function.empty() ? frame.value("module", "?") + "+?" : function);
  }
  return names.empty() ? "(no frames)" : join(names, " < ");
}

std::string who(int tid, const json& thread) {
  return "thread " + std::to_string(tid) + " \"" + thread.value("name", "") + "\"";
}

std::map<int, json> by_tid(const json& stacks) {
  std::map<int, json> out;
  for (const auto& thread : stacks["threads"]) out[thread["tid"].get<int>()] = thread;
  return out;
}

}  // namespace

StacksComparison compare_stacks(const json& agent, const json& ptrace) {
  StacksComparison c;
  auto agent_threads = by_tid(agent), ptrace_threads = by_tid(ptrace);
  c.summary = "agent (" + agent.value("method", "?") + "): " + std::to_string(agent_threads.size()) +
              " threads, ptrace (" + ptrace.value("method", "?") + "): " + std::to_string(ptrace_threads.size()) +
              " threads";
  for (const auto& [tid, thread] : ptrace_threads) {
    if (!agent_threads.count(tid)) c.threads.push_back(who(tid, thread) + " is only in ptrace's capture");
  }
  for (const auto& [tid, thread] : agent_threads) {
    auto seen = ptrace_threads.find(tid);
    if (seen == ptrace_threads.end()) {
      c.threads.push_back(who(tid, thread) + " is only in the agent's capture");
      continue;
    }
    const json& traced = seen->second;
    if (thread.value("name", "") != traced.value("name", "")) {
      c.threads.push_back(who(tid, thread) + " is named \"" + traced.value("name", "") + "\" by ptrace");
    }
    if (thread["frames"].empty()) {
      std::string why = thread.contains("error") && thread["error"].is_string() ? thread["error"].get<std::string>()
                                                                                  : "no reason given";
      c.no_stack.push_back(who(tid, thread) + ": " + why + " (ptrace: " + first_functions(traced, 6) + ")");
      continue;
    }
    if (thread.value("state", "") == "running" || traced.value("state", "") == "running") continue;
    Top top = top_function(traced);
    if (top.function.empty()) continue;
    ++c.compared;
    if (has_function_near_top(thread, top)) continue;
    c.frames.push_back(who(tid, thread) + ": ptrace's top function " + top.function + " (frame #" +
                       std::to_string(top.index) + ") is not near the agent's top\n    agent:  " +
                       first_functions(thread, 10) + "\n    ptrace: " + first_functions(traced, 10));
  }
  c.summary += "; top functions of " + std::to_string(c.compared) + " sleeping threads compared";
  return c;
}

std::vector<std::string> FoldedProfile::heaviest(size_t count) const {
  std::vector<std::pair<long, std::string>> sorted;
  for (const auto& [name, count_of] : functions) sorted.push_back({count_of, name});
  std::sort(sorted.rbegin(), sorted.rend());
  std::vector<std::string> out;
  for (size_t i = 0; i < sorted.size() && i < count; ++i) {
    out.push_back(sorted[i].second + " (" + std::to_string(sorted[i].first) + ")");
  }
  return out;
}

FoldedProfile read_folded(const std::string& path) {
  FoldedProfile profile;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    long count = std::atol(line.c_str() + space + 1);
    profile.samples += count;
    std::set<std::string> on_stack;  // a recursive function counts once per stack
    std::istringstream frames(line.substr(0, space));
    for (std::string function; std::getline(frames, function, ';');) on_stack.insert(function);
    for (const auto& function : on_stack) profile.functions[function] += count;
  }
  return profile;
}

std::set<std::string> exported_functions(const std::string& binary) {
  auto r = run({"/usr/bin/nm", "-D", "--defined-only", binary});
  std::set<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string address, type, name;
    if (!(fields >> address >> type >> name) || type.find_first_of("TtWi") == std::string::npos) continue;
    out.insert(name);
    out.insert(name.substr(0, name.find('@')));
  }
  return out;
}

bool names_code_of(const std::string& function, const std::string& binary, const std::set<std::string>& exported) {
  std::string file = binary.substr(binary.rfind('/') + 1);
  return exported.count(function) > 0 || function.rfind(file + "+0x", 0) == 0;
}

ProcUsage proc_usage(pid_t pid) {
  ProcUsage usage;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_kib = std::atol(line.c_str() + 6);
  }
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    usage.fds = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      ++usage.fds;
      char target[512];
      ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
      usage.fd_targets[std::atoi(e->d_name)] = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
    }
    ::closedir(d);
  }
  return usage;
}

std::vector<std::string> new_fds(const ProcUsage& before, const ProcUsage& after) {
  std::vector<std::string> out;
  for (const auto& [fd, target] : after.fd_targets) {
    auto old = before.fd_targets.find(fd);
    if (old == before.fd_targets.end() || old->second != target) {
      out.push_back("fd " + std::to_string(fd) + " -> " + target);
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& lines, const std::string& separator) {
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : separator) + line;
  return out;
}

}  // namespace periscope::test
