// `periscope inject PID` and `periscope eject PID`: load the agent into a running process that
// was started without it, and stop it again. How and what the host sees: docs/inject.md.
#include <cerrno>
#include <climits>
#include <cstdio>
#include <dlfcn.h>
#include <fcntl.h>
#include <csignal>
#include <fstream>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "profiler/process_info.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/discovery.h"
#include "viewer/inject/remote_symbols.h"
#include "viewer/inject/safe_point.h"

namespace periscope::viewer {

namespace {

using namespace std::chrono_literals;

constexpr size_t kErrorBytes = 512;
constexpr auto kCallTimeout = 30s;  // dlopen of the agent takes milliseconds; this is for a loader lock held elsewhere

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string process_words(pid_t pid) {
  auto info = read_process_info(pid);
  return "process " + std::to_string(pid) + (info ? " (" + info->name + ")" : "");
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat x {}, y {};
  return ::stat(a.c_str(), &x) == 0 && ::stat(b.c_str(), &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

// libperiscope.so: --lib, $PERISCOPE_LIB, beside this executable (a build tree), or where the
// package installs it relative to bin/.
std::string agent_library(const std::string& given) {
  if (!given.empty() || std::getenv("PERISCOPE_LIB")) {
    const std::string wanted = !given.empty() ? given : std::getenv("PERISCOPE_LIB");
    std::string path = real_path(wanted);
    if (path.empty()) throw CliError(kExitUsage, "no agent library at " + wanted);
    return path;
  }
  const std::string exe = real_path("/proc/self/exe");
  const std::string dir = exe.substr(0, exe.rfind('/'));
  for (const std::string& candidate : {dir + "/libperiscope.so", dir + "/" PERISCOPE_RELATIVE_LIBDIR "/libperiscope.so"}) {
    if (std::string path = real_path(candidate); !path.empty()) return path;
  }
  throw CliError(kExitUsage, "cannot find libperiscope.so beside " + exe + "; give it with --lib PATH");
}

// The library as the process sees it: our file if its root shows it at the same path, else a
// copy written into the process's /tmp under a fresh name, resolved inside its root (openat2
// RESOLVE_IN_ROOT, so a symlink planted there cannot point us at a file of ours), created
// exclusively, never through a symlink. The copy's name goes with this object: once loaded the
// library stays mapped, and a failed inject leaves nothing behind.
class LibraryInProcess {
 public:
  LibraryInProcess(pid_t pid, const std::string& library) {
    if (same_file(library, path_in_process(pid, library))) {
      path_ = library;
    } else if (!copy_in(pid, library)) {
      throw CliError(kExitCommandFailed, process_words(pid) + " cannot see " + library +
                                             " (another mount namespace) and copying it to its /tmp failed");
    }
  }
  ~LibraryInProcess() {
    if (tmp_dir_ < 0) return;
    if (!copy_name_.empty()) ::unlinkat(tmp_dir_, copy_name_.c_str(), 0);
    ::close(tmp_dir_);
  }
  LibraryInProcess(const LibraryInProcess&) = delete;
  LibraryInProcess& operator=(const LibraryInProcess&) = delete;
  const std::string& path() const { return path_; }

 private:
  bool copy_in(pid_t pid, const std::string& library) {
    const int root = ::open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    tmp_dir_ = root < 0 ? -1 : static_cast<int>(::syscall(SYS_openat2, root, "tmp", &how, sizeof how));
    if (root >= 0) ::close(root);
    if (tmp_dir_ < 0) return false;
    char name[64];
    std::snprintf(name, sizeof name, "libperiscope-inject-%d-%08x.so", pid, static_cast<unsigned>(::random()));
    const int out = ::openat(tmp_dir_, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) return false;
    copy_name_ = name;  // ours from here on: removed by the destructor
    std::ifstream in(library, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const bool written = in && ::write(out, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(out);
    path_ = std::string("/tmp/") + name;
    return written;
  }

  std::string path_;
  int tmp_dir_ = -1;
  std::string copy_name_;
};

// Ctrl-C, a closed terminal or a kill while a thread of the host is ours would leave it in the
// middle of a call: those signals wait until it is let go.
class HoldTerminationSignals {
 public:
  HoldTerminationSignals() {
    sigset_t held;
    sigemptyset(&held);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP}) sigaddset(&held, sig);
    ::sigprocmask(SIG_BLOCK, &held, &old_);
  }
  ~HoldTerminationSignals() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  HoldTerminationSignals(const HoldTerminationSignals&) = delete;
  HoldTerminationSignals& operator=(const HoldTerminationSignals&) = delete;

 private:
  sigset_t old_;
};

struct Loader {
  uint64_t dlopen = 0;
  uint64_t dlsym = 0;
  uint64_t dlerror = 0;
};

// glibc 2.34 and later have dlopen in libc; older ones in libdl, if the process loaded it.
Loader find_loader(pid_t pid) {
  if (!find_remote_module(pid, [](const std::string& name) { return starts_with(name, "ld-linux") || starts_with(name, "ld-"); })) {
    throw CliError(kExitCommandFailed, process_words(pid) +
                                           " is statically linked: there is no dynamic loader in it to load the "
                                           "agent; link it with periscope (periscope::start()) instead");
  }
  for (const char* prefix : {"libc.so", "libdl.so"}) {
    auto module = find_remote_module(pid, [prefix](const std::string& name) { return starts_with(name, prefix); });
    if (!module) continue;
    Loader l;
    l.dlopen = remote_symbol(pid, *module, "dlopen").value_or(0);
    l.dlsym = remote_symbol(pid, *module, "dlsym").value_or(0);
    l.dlerror = remote_symbol(pid, *module, "dlerror").value_or(0);
    if (l.dlopen && l.dlsym && l.dlerror) return l;
  }
  throw CliError(kExitCommandFailed, process_words(pid) +
                                         " has no dlopen (a C library older than glibc 2.34 without libdl loaded)");
}

std::string settings_text(const InjectOptions& inject) {
  std::string text;
  auto add = [&text](std::string name, const std::string& value) {
    if (!starts_with(name, "PERISCOPE_")) name = "PERISCOPE_" + name;
    if (value.find('\n') != std::string::npos) throw CliError(kExitUsage, "a setting cannot hold a newline: " + name);
    text += name + "=" + value + "\n";
  };
  if (!inject.http.empty()) add("HTTP", inject.http);
  if (!inject.socket_dir.empty()) add("SOCKET_DIR", inject.socket_dir);
  for (const auto& setting : inject.settings) {
    const size_t eq = setting.find('=');
    if (eq == std::string::npos || eq == 0) throw CliError(kExitUsage, "--set wants NAME=VALUE, got '" + setting + "'");
    add(setting.substr(0, eq), setting.substr(eq + 1));
  }
  return text;
}

uint64_t call_or_throw(TracedThread& thread, uint64_t function, const std::vector<uint64_t>& args, const char* what) {
  uint64_t result = 0;
  if (auto err = thread.call(function, args, &result, kCallTimeout); !err.empty()) {
    if (thread.call_in_progress()) {
      // Letting it go now would return it to nowhere: we stay until it returns.
      print_error(std::string(what) + ": " + err + "; still waiting for it to return");
      while (thread.call_in_progress()) err = thread.finish_call(&result, kCallTimeout);
      if (err.empty()) return result;
    }
    throw CliError(kExitCommandFailed, std::string(what) + " in the process failed: " + err);
  }
  return result;
}

struct Injected {
  std::string where;
  pid_t tid = 0;
  std::chrono::microseconds stopped{0};
};

// Stops one thread, loads and starts the agent on it, lets it go: every exit path resumes it.
Injected load_agent(pid_t pid, const std::string& library, const std::string& settings, std::chrono::milliseconds wait) {
  const Loader loader = find_loader(pid);
  HoldTerminationSignals hold;
  SafePoint point = stop_at_safe_point(pid, wait);
  if (!point.thread) throw CliError(point.denied ? kExitPermission : kExitCommandFailed, point.error);
  TracedThread& thread = *point.thread;
  const uint64_t path = thread.push_string(library);
  const uint64_t entry_name = thread.push_string("periscope_inject_start");
  const uint64_t text = thread.push_string(settings);
  const std::string zeros(kErrorBytes, '\0');
  const uint64_t error = thread.push_bytes(zeros.data(), zeros.size());
  if (!path || !entry_name || !text || !error) throw CliError(kExitCommandFailed, "cannot write to the thread's stack");

  const uint64_t handle = call_or_throw(thread, loader.dlopen, {path, RTLD_NOW}, "dlopen");
  if (handle == 0) {
    const uint64_t message = call_or_throw(thread, loader.dlerror, {}, "dlerror");
    throw CliError(kExitCommandFailed, "dlopen in " + process_words(pid) + " failed: " +
                                           (message ? thread.read_string(message, 1024) : std::string("?")));
  }
  const uint64_t entry = call_or_throw(thread, loader.dlsym, {handle, entry_name}, "dlsym");
  if (entry == 0) throw CliError(kExitCommandFailed, library + " has no periscope_inject_start: not a periscope agent?");
  const auto started = static_cast<int>(call_or_throw(thread, entry, {text, error, kErrorBytes}, "starting the agent"));
  if (started == 2) throw CliError(kExitCommandFailed, "the agent did not start: " + thread.read_string(error, kErrorBytes));
  if (auto err = thread.resume(); !err.empty()) throw CliError(kExitCommandFailed, "letting the thread go: " + err);
  return {point.where, point.tid, thread.stopped_for()};
}

}  // namespace

int run_inject(pid_t pid, const InjectOptions& inject, const CommonOptions& options) {
  if (!process_exists(pid)) throw CliError(kExitNoProcess, "no process with PID " + std::to_string(pid));
  if (auto socket = find_agent_socket(pid)) {
    std::printf("%s already has a periscope agent (socket %s)\n", process_words(pid).c_str(), socket->c_str());
    return kExitOk;
  }
  // Before anything else: a refusal should name its real cause (the library's path through
  // /proc/PID/root is unreadable too when ptrace is not allowed).
  char root[PATH_MAX];
  if (::readlink(("/proc/" + std::to_string(pid) + "/root").c_str(), root, sizeof root) < 0 &&
      (errno == EACCES || errno == EPERM)) {
    throw CliError(kExitPermission, ptrace_refusal(pid, EPERM));
  }
  const std::string settings = settings_text(inject);
  const LibraryInProcess library(pid, agent_library(inject.library));
  const Injected done = load_agent(pid, library.path(), settings, inject.wait);
  std::string socket;
  for (int i = 0; i < 100 && socket.empty(); ++i) {
    if (auto found = find_agent_socket(pid)) socket = *found;
    else std::this_thread::sleep_for(20ms);
  }
  if (options.json) {
    nlohmann::json out{{"pid", pid}, {"thread", done.tid}, {"stopped_us", done.stopped.count()},
                       {"where", done.where}, {"socket", socket}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("periscope agent injected into %s: thread %d stopped %.1f ms (in %s); socket %s\n",
                process_words(pid).c_str(), done.tid, static_cast<double>(done.stopped.count()) / 1000.0,
                done.where.c_str(), socket.empty() ? "not seen yet" : socket.c_str());
  }
  return socket.empty() ? kExitCommandFailed : kExitOk;
}

int run_eject(pid_t pid, const CommonOptions& options) {
  {
    Client client = Client::connect_to_pid(pid, options.timeout);
    client.call_checked({"eject"});
  }
  for (int i = 0; i < 250; ++i) {
    if (!find_agent_socket(pid)) {
      std::printf("the agent in %s stopped; its code stays mapped ('periscope inject %d' starts it again)\n",
                  process_words(pid).c_str(), pid);
      return kExitOk;
    }
    std::this_thread::sleep_for(20ms);
  }
  throw CliError(kExitCommandFailed, "the agent in " + process_words(pid) + " did not stop within 5 s");
}

}  // namespace periscope::viewer
