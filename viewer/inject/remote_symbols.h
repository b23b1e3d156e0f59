// Addresses of functions in another process: its loaded modules from /proc/PID/maps, their
// exported (dynamic) symbols read from the same files through /proc/PID/root, so that a process
// in another mount namespace is read right. For `periscope inject`.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace periscope::viewer {

struct RemoteModule {
  std::string path;   // as the process sees it
  uint64_t bias = 0;  // load address minus the file's link-time address
};

// One line of /proc/PID/maps.
struct RemoteMapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // in the file
  std::string name;     // a path, "[stack]" and the like, or "" for anonymous memory
};
std::vector<RemoteMapping> remote_mappings(pid_t pid);

// The first module whose path's file name satisfies `wanted` (e.g. starts with "libc.so").
std::optional<RemoteModule> find_remote_module(pid_t pid, const std::function<bool(const std::string&)>& wanted);
// The address in `pid` of the exported function or object `name` of `module` (its default
// version when there are several); nullopt when it has none.
std::optional<uint64_t> remote_symbol(pid_t pid, const RemoteModule& module, const char* name);
// "/proc/PID/root" + path: the file the process sees at `path`.
std::string path_in_process(pid_t pid, const std::string& path);

}  // namespace periscope::viewer
