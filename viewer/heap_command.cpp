// `periscope heap PID [--start [--rate BYTES] | --stop] [--diff SECONDS] [-o FILE] [--value V]`: the
// sampled heap profile of a running process. Without -o, the functions that hold the most memory;
// with -o, a file in the format its name asks for (pprof holds all four values; the others the one
// --value picks). --diff reads the profile twice, SECONDS apart, and shows what grew: the leak
// suspects, biggest first.
#include <atomic>
#include <chrono>
#include <memory>
#include <csignal>
#include <cstdio>
#include <thread>
#include <unistd.h>

#include "profiler/heap_profile.h"
#include "profiler/profile_formats.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/output_file.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) { g_interrupted.store(true); }  // async-signal-safe: one atomic store

// The agent's profile, named here when this viewer can read the process's files, else by the agent.
class HeapFetcher {
 public:
  explicit HeapFetcher(pid_t pid) : symbolizer_(std::make_unique<Symbolizer>(pid)) {
    if (!symbolizer_->error().empty()) symbolizer_.reset();
  }
  HeapProfile fetch(Client& client) {
    std::vector<std::string> words{"heap", "dump"};
    if (symbolizer_) words.push_back("--raw");
    nlohmann::json reply = client.call_checked(words)["data"];
    try {
      return heap_profile_from_json(reply);
    } catch (const nlohmann::json::exception& e) {
      throw CliError(kExitConnection, std::string("malformed heap profile from the agent: ") + e.what());
    }
  }
  void name(HeapProfile& p) {
    if (symbolizer_) name_heap_stacks(p, *symbolizer_);
  }

 private:
  std::unique_ptr<Symbolizer> symbolizer_;
};

// Waits `seconds` with a countdown on a terminal; Ctrl-C ends the wait early (the diff covers less).
void wait_for_diff(pid_t pid, int seconds) {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {};
  ::sigaction(SIGINT, &action, &old_int);
  const bool tty = ::isatty(STDERR_FILENO);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!g_interrupted.load() && std::chrono::steady_clock::now() < until) {
    if (tty) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(until - std::chrono::steady_clock::now());
      std::fprintf(stderr, "\rheap of pid %d: reading again in %lld s (Ctrl-C: now)   ", pid,
                   static_cast<long long>(left.count()) + 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  if (tty) std::fputc('\n', stderr);
}

}  // namespace

int run_heap(pid_t pid, const HeapOptions& o, const CommonOptions& options) {
  HeapValue value = HeapValue::kInuseSpace;
  if (!o.value.empty() && !heap_value_from_name(o.value, &value)) {
    throw CliError(kExitUsage, "--value must be inuse_space, inuse_objects, alloc_space or alloc_objects, not '" +
                                   o.value + "'");
  }
  if (o.rate > 0 && !o.start) throw CliError(kExitUsage, "--rate goes with --start (the rate of a new heap profile)");
  if (o.stop && (!o.output.empty() || o.diff_seconds > 0)) {
    throw CliError(kExitUsage, "--stop only stops; read the profile first (-o, --diff), then stop it");
  }
  std::string format;
  if (!o.output.empty()) {
    std::string error;
    format = profile_format_for(o.output, &error);
    if (format.empty()) throw CliError(kExitUsage, error);
  }
  Client client = Client::connect_to_pid(pid, options.timeout);
  if (o.stop || o.start) {
    std::vector<std::string> words{"heap", o.stop ? "stop" : "start"};
    if (o.start && o.rate > 0) words.push_back(std::to_string(o.rate));
    nlohmann::json reply = client.call_checked(words);
    print_untrusted(reply.value("text", ""), stdout);
    if (o.stop || (o.output.empty() && o.diff_seconds == 0 && !options.json)) return kExitOk;
  }
  HeapFetcher fetcher(pid);
  HeapProfile profile = fetcher.fetch(client);
  if (o.diff_seconds > 0) {
    wait_for_diff(pid, o.diff_seconds);
    profile = heap_delta(profile, fetcher.fetch(client));
  }
  fetcher.name(profile);
  if (options.json) {
    std::printf("%s\n", heap_profile_to_json(profile).dump().c_str());
    return kExitOk;
  }
  if (!profile.on && !profile.delta) {
    print_untrusted("note: heap profiling is stopped; this is what it saw until then\n", stderr);
  }
  if (o.output.empty()) {
    print_untrusted(render_heap_top(profile, value, static_cast<size_t>(o.rows)), stdout);
    return kExitOk;
  }
  if (format == "pprof") {
    write_atomically(o.output, heap_to_pprof_gz(profile, value));
  } else {
    Profile as_profile = heap_as_profile(profile, value);
    if (as_profile.stacks.empty()) {
      throw CliError(kExitCommandFailed, std::string("no ") + heap_value_name(value) + (profile.delta ? " grew" : " is sampled") +
                                             ", so no " + o.output + " was written");
    }
    write_atomically(o.output, render_profile(as_profile, format, {}));
  }
  std::fprintf(stderr, "wrote %s: %zu stacks, %s%s (from %llu sampled allocations)\n", o.output.c_str(),
               profile.stacks.size(), profile.delta ? "change in " : "", heap_value_name(value),
               static_cast<unsigned long long>(profile.samples));
  return kExitOk;
}

}  // namespace periscope::viewer
