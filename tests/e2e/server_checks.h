// What a user compares when looking at a real server through periscope: the agent's stacks
// against ptrace's, a folded profile's functions against the binary's, and the host's memory
// and descriptors before and after. Plain data in, findings out; the tests decide.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::test {

// The pids `periscope ps --json` lists, with their rows; throws when ps fails.
std::map<pid_t, nlohmann::json> agents_listed();

// `periscope stacks PID --json`, through the agent or (`ptrace`) forced through ptrace; throws
// with the CLI's words when it fails.
nlohmann::json stacks_json(pid_t pid, bool ptrace);

// How the agent's capture of a process differs from ptrace's, one line per finding. Loose by
// design: a thread that runs in either capture moves between the two and is not compared
// frame by frame, and only the innermost function outside libc must be near the agent's top.
struct StacksComparison {
  std::string summary;                  // "agent: 7 threads, ptrace: 7 threads"
  std::vector<std::string> threads;     // threads only one of the two saw, or named differently
  std::vector<std::string> frames;      // sleeping threads whose top function the agent misses
  std::vector<std::string> no_stack;    // threads the agent captured no frames of, with its reason
  int compared = 0;                     // threads whose top functions were compared
  bool agrees() const { return threads.empty() && frames.empty(); }
};
StacksComparison compare_stacks(const nlohmann::json& agent, const nlohmann::json& ptrace);

// A folded profile ("a;b;c 12" per line).
struct FoldedProfile {
  long samples = 0;
  std::map<std::string, long> functions;  // every function on any stack, with the samples it is on
  std::vector<std::string> heaviest(size_t count) const;  // "name (N)", most samples first
};
FoldedProfile read_folded(const std::string& path);

// Functions a binary defines in its dynamic symbol table (what a stripped Debian binary keeps),
// from nm -D.
std::set<std::string> exported_functions(const std::string& binary);
// Whether `function` comes from `binary`: one of its exported names, or "<file name>+0x..."
// (an address in it that has no name).
bool names_code_of(const std::string& function, const std::string& binary, const std::set<std::string>& exported);

// What the kernel says a process uses.
struct ProcUsage {
  long rss_kib = -1;  // VmRSS
  int fds = -1;       // entries of /proc/PID/fd
  std::map<int, std::string> fd_targets;  // fd -> what it refers to ("socket:[123]", a path)
};
// "fd 7 -> /usr/lib/debug/...", for each fd of `after` that `before` did not have.
std::vector<std::string> new_fds(const ProcUsage& before, const ProcUsage& after);
ProcUsage proc_usage(pid_t pid);

std::string join(const std::vector<std::string>& lines, const std::string& separator = "\n");

}  // namespace periscope::test
