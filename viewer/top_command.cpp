// `periscope top PID`: a live view like `py-spy top`: the hottest functions by own and total
// share, refreshed every second; the header shows rate, samples, lost samples and threads. On a
// terminal: 'o' sorts by own, 't' by total, 'q' quits. Sampling stops when top ends.
// `--request NAME`: only the samples taken while a thread served that request ("-": outside any).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <poll.h>
#include <set>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "profiler/profile.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/profile_fetch.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

std::atomic<bool> g_quit{false};
void on_quit_signal(int) { g_quit.store(true); }  // async-signal-safe: one atomic store

struct FunctionShare {
  std::string name;
  uint64_t own = 0;
  uint64_t total = 0;
};

// The stacks `request` asks for: all when empty, those outside any request for "-".
bool wanted(const ProfileStack& s, const std::string& request) {
  return request.empty() || s.request == (request == "-" ? std::string() : request);
}

std::vector<FunctionShare> shares(const Profile& p, const std::string& request) {
  std::map<std::string, FunctionShare> by;
  for (const auto& s : p.stacks) {
    if (s.frames.empty() || !wanted(s, request)) continue;
    by[s.frames.back()].own += s.count;
    std::set<std::string> seen(s.frames.begin(), s.frames.end());  // recursion counts once
    for (const auto& f : seen) by[f].total += s.count;
  }
  std::vector<FunctionShare> out;
  for (auto& [name, share] : by) {
    share.name = name;
    out.push_back(share);
  }
  return out;
}

int terminal_rows() {
  winsize w{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_row > 8) return w.ws_row;
  return 30;
}

std::string render(pid_t pid, const Profile& p, const std::string& request, bool by_total, int rows, bool tty) {
  auto list = shares(p, request);
  std::sort(list.begin(), list.end(), [by_total](const FunctionShare& a, const FunctionShare& b) {
    return by_total ? a.total > b.total : a.own > b.own;
  });
  char line[512];
  std::string out;
  std::snprintf(line, sizeof line, "pid %d  %s %d Hz  %.1f s  samples %llu  lost %llu  threads %zu  (%s)\n\n", pid,
                p.mode.c_str(), p.hz, p.seconds, static_cast<unsigned long long>(p.samples),
                static_cast<unsigned long long>(p.lost), p.threads, p.clock.c_str());
  out += line;
  double all = p.samples ? static_cast<double>(p.samples) : 1.0;
  if (!request.empty()) {
    uint64_t of_request = 0;
    for (const auto& s : p.stacks) of_request += wanted(s, request) ? s.count : 0;
    std::snprintf(line, sizeof line, "%s: %llu samples (%.1f%% of all); shares below are of these\n\n",
                  request == "-" ? "outside any request" : ("request " + request).c_str(),
                  static_cast<unsigned long long>(of_request), 100.0 * static_cast<double>(of_request) / all);
    out += line;
    all = of_request ? static_cast<double>(of_request) : 1.0;
  }
  std::snprintf(line, sizeof line, "%7s %7s  %s\n", by_total ? "%Own" : "%Own*", by_total ? "%Total*" : "%Total",
                "function");
  out += line;
  for (int i = 0; i < static_cast<int>(list.size()) && i < rows - 5; ++i) {
    std::snprintf(line, sizeof line, "%6.1f%% %6.1f%%  %.200s\n", 100.0 * static_cast<double>(list[i].own) / all,
                  100.0 * static_cast<double>(list[i].total) / all, list[i].name.c_str());
    out += line;
  }
  if (tty) out += "\n[o] sort by own  [t] sort by total  [q] quit";
  return out;
}

// Raw, non-echoing keys while top runs on a terminal; restored on every way out.
class KeyboardMode {
 public:
  // Keys without Enter and without echo; output processing and Ctrl-C stay as they were.
  KeyboardMode() {
    active_ = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (!active_) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  ~KeyboardMode() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  // Waits up to `ms` for a key; 0 when none.
  char wait_key(int ms) const {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (!active_) {
      ::poll(nullptr, 0, ms);
      return 0;
    }
    if (::poll(&p, 1, ms) <= 0) return 0;
    char c = 0;
    return ::read(STDIN_FILENO, &c, 1) == 1 ? c : 0;
  }

 private:
  termios saved_{};  // filled in the constructor's body: a member initialiser would run before it
  bool active_ = false;
};

}  // namespace

int run_top(pid_t pid, const TopOptions& o, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  client.call_checked({"profile", "start", o.wall ? "wall" : "cpu", std::to_string(o.hz)});
  struct sigaction action {};
  action.sa_handler = on_quit_signal;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  const bool tty = ::isatty(STDOUT_FILENO);
  bool by_total = o.sort_total;
  int shown = 0;
  int code = kExitOk;
  ProfileFetcher fetcher(pid);
  {
    KeyboardMode keys;
    while (!g_quit.load() && (o.iterations == 0 || shown < o.iterations)) {
      char key = keys.wait_key(1000);
      if (key == 'q') break;
      if (key == 'o') by_total = false;
      if (key == 't') by_total = true;
      Profile p;
      try {
        p = fetcher.fetch(client);
      } catch (const CliError& e) {
        print_error(e.what());
        code = kExitCommandFailed;
        break;
      }
      std::string screen = render(pid, p, o.request, by_total, tty ? terminal_rows() : 25, tty);
      if (tty) std::fputs("\x1b[H\x1b[2J", stdout);
      print_untrusted(screen);
      std::fputs(tty ? "" : "\n", stdout);
      std::fflush(stdout);
      ++shown;
    }
  }
  if (tty) std::fputs("\n", stdout);
  client.call({"profile", "stop"});
  return code;
}

}  // namespace periscope::viewer
