// `periscope record PID [-d SECONDS] [--rate HZ] [--wall] [--threads] -o FILE`: samples a running
// process through its agent and writes the profile in the format FILE's name asks for. A progress
// line shows samples taken and lost; Ctrl-C stops early and still writes the file.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>
#include <unistd.h>

#include "profiler/profile_formats.h"
#include "viewer/cli_errors.h"
#include "viewer/output_file.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"
#include "viewer/profile_fetch.h"

namespace periscope::viewer {

namespace {

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) { g_interrupted.store(true); }  // async-signal-safe: one atomic store

void show_progress(pid_t pid, const nlohmann::json& status, double target_s) {
  const double s = status.value("seconds", 0.0);
  std::string bar;
  if (target_s > 0) {
    int filled = static_cast<int>(20 * std::min(1.0, s / target_s));
    bar = "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(20 - filled), ' ') + "] ";
  }
  std::fprintf(stderr, "\rrecording pid %d (%s, %d Hz): %s%.1f%s s  %llu samples  %llu lost%s   ", pid,
               status.value("mode", "?").c_str(), status.value("hz", 0), bar.c_str(), s,
               target_s > 0 ? ("/" + std::to_string(static_cast<int>(target_s))).c_str() : "",
               static_cast<unsigned long long>(status.value("samples", uint64_t{0})),
               static_cast<unsigned long long>(status.value("lost", uint64_t{0})),
               target_s > 0 ? "" : "  (Ctrl-C stops)");
}

}  // namespace

// Whether process `pid` is gone (or a zombie): its agent cannot answer any more.
bool exited(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z' || line[close + 2] == 'X';
}

// At every poll (200 ms) for the first two seconds, so that a target that lives only a moment (a
// forked backend ending its query) still leaves its samples; then every tenth of the time recorded
// so far: a long recording of many stacks does not make the agent serialize its whole window
// often, and a target that dies loses at most a tenth of it.
std::chrono::duration<double> checkpoint_interval(double elapsed_s) {
  return std::chrono::duration<double>(std::max(0.2, elapsed_s / 10));
}

int run_record(pid_t pid, const RecordOptions& o, const CommonOptions& options) {
  std::string error;
  const std::string format = profile_format_for(o.output, &error);
  if (format.empty()) throw CliError(kExitUsage, error);
  Client client = Client::connect_to_pid(pid, options.timeout);
  ProfileFetcher fetcher(pid);  // reads the module list now, while the target surely lives
  client.call_checked({"profile", "start", o.wall ? "wall" : "cpu", std::to_string(o.hz)});

  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  const bool tty = ::isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  nlohmann::json status;
  // What the window held at the last checkpoint: written if the target exits before the end
  // (a forked backend ending its query, a crash), as perf keeps what it sampled.
  nlohmann::json checkpoint;
  auto checkpointed = started;
  std::string gone;  // why the target stopped answering midway
  auto on_lost = [&](const CliError& e) {
    if (e.exit_code() != kExitConnection) throw e;
    gone = exited(pid) ? "process " + std::to_string(pid) + " exited during the recording"
                       : std::string("the connection was lost during the recording (") + e.what() + ")";
  };
  while (!g_interrupted.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
      status = client.call_checked({"profile", "status"})["data"];
      if (tty) show_progress(pid, status, o.seconds);
      if (!status.value("running", false)) break;  // stopped from elsewhere
      const auto now = std::chrono::steady_clock::now();
      double elapsed = std::chrono::duration<double>(now - started).count();
      if (o.seconds > 0 && elapsed >= o.seconds) break;
      if (now - checkpointed >= checkpoint_interval(elapsed)) {
        checkpoint = fetcher.fetch_reply(client);
        checkpointed = now;
      }
    } catch (const CliError& e) {
      on_lost(e);
      break;
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (tty) std::fputc('\n', stderr);
  Profile profile;
  if (gone.empty()) {
    try {
      (void)client.call({"profile", "stop"});  // fails harmlessly if stopped from elsewhere
      profile = fetcher.fetch(client);
    } catch (const CliError& e) {
      on_lost(e);
    }
  }
  if (!gone.empty()) {
    if (checkpoint.is_null()) throw CliError(kExitConnection, gone + ", before its first checkpoint (200 ms): nothing was written");
    profile = fetcher.name(checkpoint);
  }
  // Thread names and the agent's words come from the target: escaped like every other string.
  for (const auto& line : profile.unsampled) print_untrusted("not sampled: " + line + "\n", stderr);
  if (!profile.problem.empty() && profile.samples > 0) print_untrusted("warning: " + profile.problem + "\n", stderr);
  if (auto why = why_no_samples(profile); !why.empty()) {
    throw CliError(gone.empty() ? kExitCommandFailed : kExitPartial,
                   (gone.empty() ? "" : gone + "; ") + "no samples, so no " + o.output + " was written: " + why);
  }
  write_atomically(o.output, render_profile(profile, format, {o.by_request, o.per_thread}));
  std::fprintf(stderr, "wrote %s: %llu samples (%llu lost) over %.1f s, %zu stacks, %s%s\n", o.output.c_str(),
               static_cast<unsigned long long>(profile.samples), static_cast<unsigned long long>(profile.lost),
               profile.seconds, profile.stacks.size(), profile.clock.c_str(),
               g_interrupted.load() ? " (interrupted)" : "");
  if (auto costs = describe_costs(profile); !costs.empty()) print_untrusted("sampling: " + costs + "\n", stderr);
  if (!gone.empty()) {
    print_error(gone + "; the file holds what was sampled up to its last checkpoint");
    return kExitPartial;
  }
  if (!profile.problem.empty()) return kExitPartial;  // sampling stopped early (said above): shorter than asked
  return kExitOk;
}

}  // namespace periscope::viewer
