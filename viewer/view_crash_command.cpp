// `periscope view-crash FILE`: a crash report (stderr or PERISCOPE_CRASH_LOG) with its frames
// named. The agent writes raw "module+0xOFFSET" (file offsets: nothing on the crash path may
// read debug information); here each offset becomes the module's own address (its program
// headers) and elfutils' eu-addr2line names the function, file and line.
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <map>
#include <optional>
#include <regex>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "viewer/cli_errors.h"
#include "viewer/commands.h"
#include "viewer/elf_file.h"
#include "viewer/terminal_text.h"

extern char** environ;

namespace periscope::viewer {

namespace {

// The module's link-time address of file offset `offset`, from its loadable segments.
std::optional<uint64_t> address_of_offset(const std::string& module, uint64_t offset) {
  auto segment = ElfFile(module).load_segment_holding(offset);
  if (!segment) return std::nullopt;
  return offset - segment->p_offset + segment->p_vaddr;
}

// A regular file only (see elf_file.h): the report itself is opened the same way.
int open_regular(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  struct stat st {};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// eu-addr2line's "function\nfile:line" for each address of one module; empty on failure.
std::vector<std::string> names_in(const std::string& module, const std::vector<uint64_t>& addresses) {
  std::vector<std::string> args{"eu-addr2line", "-f", "-C", "-e", module};
  for (uint64_t a : addresses) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(a));
    args.push_back(hex);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, "eu-addr2line", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; spawned == 0 && (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  if (spawned != 0) return {};
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string function, place; std::getline(in, function) && std::getline(in, place);) {
    lines.push_back(function == "??" ? "" : function + (place.rfind("??", 0) == 0 ? "" : " (" + place + ")"));
  }
  return lines;
}

}  // namespace

int run_view_crash(const std::string& file) {
  constexpr size_t kMaxBytes = 64 << 20;
  const int fd = open_regular(file);
  if (fd < 0) throw CliError(kExitUsage, "cannot read " + file + " (a regular file is needed)");
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxBytes;) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (text.size() > kMaxBytes) throw CliError(kExitUsage, file + " is over 64 MiB: not a crash report");
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);

  // "  #3 0x55d0c1c0a1b2 /usr/bin/prog+0x11b2" and "  at 0x... /usr/bin/prog+0x11b2"
  const std::regex frame(R"(^( {2,4}(?:#\d{1,4}|at) 0x[0-9a-f]{1,16} )(/\S+)\+0x([0-9a-f]{1,16})$)");
  constexpr size_t kMaxFrameLine = 4096;  // std::regex recurses per character: long lines are not frames
  struct Wanted {
    size_t line;
    uint64_t address;
  };
  std::map<std::string, std::vector<Wanted>> by_module;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (lines[i].size() > kMaxFrameLine || !std::regex_match(lines[i], m, frame)) continue;
    if (auto address = address_of_offset(m[2], std::stoull(m[3], nullptr, 16))) {
      by_module[m[2]].push_back({i, *address});
    }
  }
  std::map<size_t, std::string> names;
  for (const auto& [module, wanted] : by_module) {
    std::vector<uint64_t> addresses;
    for (const auto& w : wanted) addresses.push_back(w.address);
    const auto found = names_in(module, addresses);
    for (size_t k = 0; k < wanted.size() && k < found.size(); ++k) {
      if (!found[k].empty()) names[wanted[k].line] = found[k];
    }
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string out = lines[i];
    if (auto it = names.find(i); it != names.end()) out += "  " + it->second;
    print_untrusted(out + "\n");
  }
  return kExitOk;
}

}  // namespace periscope::viewer
