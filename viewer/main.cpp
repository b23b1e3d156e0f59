// periscope: the viewer CLI. Finds processes that carry the agent and looks inside them.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>

#include "profiler/sampling_rate.h"
#include "viewer/cli_errors.h"
#include "viewer/commands.h"
#include "viewer/discovery.h"

using namespace periscope::viewer;

namespace {

std::string rate_help() {
  return "samples per second per thread, " + periscope::sampling_hz_range() + " (default " +
         std::to_string(periscope::kDefaultSamplingHz) + ")";
}
CLI::Range rate_range() { return CLI::Range(periscope::kMinSamplingHz, periscope::kMaxSamplingHz); }

constexpr const char* kDescription =
    "periscope " PERISCOPE_VERSION_STRING " - look inside running native processes without stopping them.\n"
    "A process carries the agent when it runs with LD_PRELOAD=libperiscope.so or calls periscope::start().";

constexpr const char* kExamples = R"(
Examples:
  periscope ps                          every process with an agent
  periscope attach 4242                 REPL into process 4242 (Tab completes, Ctrl-D leaves)
  periscope exec 4242 threads           one command, reply on stdout
  periscope exec 4242 set log_level debug
  periscope exec --json 4242 info       the reply as JSON, for scripts
  periscope stacks 4242                 every thread's stack (through the agent, else ptrace)
  periscope stacks 4242 --thread 4250   one thread only
  periscope slow 4242 --follow          slow requests with the stacks they were caught in
  periscope inflight 4242               requests running now, oldest first
  periscope record 4242 -d 30 -o cpu.html            CPU profile as an interactive flame graph
  periscope record 4242 --wall -o wall.speedscope.json   every thread, running or blocked
  periscope record 4242 -d 10 -o cpu.pb.gz           for go tool pprof
  periscope top 4242                    live: the hottest functions, refreshed every second
  periscope heap 4242 --start           sample allocations from now on (or run with PERISCOPE_HEAP=on)
  periscope heap 4242                   the functions holding the most memory
  periscope heap 4242 --diff 60         what grew in a minute: leak suspects first
  periscope heap 4242 -o heap.pb.gz     for go tool pprof (also .html, .folded)
  periscope inject 4242                 load the agent into a process started without it
  periscope inject 4242 --http 127.0.0.1:9464        ...with its HTTP endpoint
  periscope eject 4242                  stop that agent again
  periscope view-crash crash.log        a crash report with its functions named
  periscope metrics 4242                Prometheus metrics, readable (--raw: the text format)
  periscope metrics 4242 request_duration            only metrics whose name contains this
  periscope ps --prometheus-sd -o /etc/prometheus/periscope.json   targets for Prometheus' file_sd_configs
  periscope view cpu.pb.gz --bottom-up               a profile file as a call tree
  periscope view cpu.folded -o cpu.speedscope.json   convert between formats

Exit codes: 0 ok, 1 the command failed, 2 bad usage, 3 no such process or no agent,
4 permission denied, 5 connection lost or timed out, 6 a record ended early (the target exited
or took its signal back): what was sampled until then is written.)";

void add_pid(CLI::App* cmd, pid_t& pid) {
  cmd->add_option("PID", pid, "process id (see 'periscope ps')")->required()->check(CLI::PositiveNumber);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  ::unsetenv("DEBUGINFOD_URLS");  // symbolization never downloads unless asked
  CLI::App app{kDescription, "periscope"};
  app.footer(kExamples);
  app.set_version_flag("--version", "periscope " PERISCOPE_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();  // the global options (--inject, --json...) may come after the subcommand too

  CommonOptions common;
  double timeout_s = 30;
  app.add_option("--timeout", timeout_s, "seconds to wait for a reply (default 30)")
      ->check(CLI::Range(0.1, 86400.0));

  auto* ps = app.add_subcommand("ps", "list every live process with a periscope agent");
  PsOptions ps_options;
  ps->add_flag("--json", common.json, "print JSON");
  ps->add_flag("--prometheus-sd", ps_options.prometheus_sd,
               "print a Prometheus file_sd_configs target list of every agent with HTTP (PERISCOPE_HTTP)");
  ps->add_option("-o,--output", ps_options.output,
                 "with --prometheus-sd: write this file (atomically, for Prometheus to watch)");
  ps->add_option("--job", ps_options.job, "with --prometheus-sd: the job label (default periscope)");

  pid_t pid = 0;
  auto* attach = app.add_subcommand("attach", "interactive REPL into a process's manhole");
  add_pid(attach, pid);

  auto* exec = app.add_subcommand("exec", "run one manhole command; its reply goes to stdout");
  exec->add_flag("--json", common.json, "print the reply's data as JSON (put options before PID)");
  add_pid(exec, pid);
  exec->prefix_command();  // everything after PID is the command, even words that start with '-'
  exec->fallthrough(false);  // ...so nothing of it goes to the global options
  exec->footer("COMMAND [ARGS...] follow PID; 'periscope exec PID help' lists the commands.");

  auto* stacks = app.add_subcommand("stacks", "every thread's stack: through the agent if the process has one, "
                                               "else by ptrace (like eu-stack)");
  add_pid(stacks, pid);
  StacksOptions stacks_options;
  stacks->add_option("--thread", stacks_options.threads, "only this thread (repeatable)")
      ->check(CLI::PositiveNumber);
  stacks->add_flag("--json", common.json, "print JSON (always with full function names)");
  stacks->add_flag("--ptrace", stacks_options.force_ptrace, "use ptrace even when the process has an agent");
  stacks->add_flag("--full-names", stacks_options.full_names,
                   "show template arguments and parameter lists in function names");

  auto* slow = app.add_subcommand("slow", "slow requests caught while still running, with their stacks "
                                         "(periscope::Request; threshold PERISCOPE_SLOW_MS)");
  add_pid(slow, pid);
  bool follow = false;
  slow->add_flag("--json", common.json, "print JSON (with --follow: one report per line)");
  slow->add_flag("-f,--follow", follow, "keep printing new reports until interrupted");

  auto* inflight = app.add_subcommand("inflight", "requests running now, oldest first");
  add_pid(inflight, pid);
  size_t inflight_limit = 100;
  inflight->add_flag("--json", common.json, "print JSON");
  inflight->add_option("--limit", inflight_limit, "show at most this many (default 100)")->check(CLI::PositiveNumber);

  auto* metrics = app.add_subcommand("metrics", "the process's Prometheus metrics, readable (through the manhole; "
                                                 "no HTTP needed)");
  add_pid(metrics, pid);
  MetricsOptions metrics_options;
  metrics->add_option("FILTER", metrics_options.filter, "only metrics whose name contains this");
  metrics->add_flag("--raw", metrics_options.raw, "print the Prometheus text format, as /metrics serves it");
  metrics->add_flag("--json", common.json, "print the metric families as JSON");

  auto* record = app.add_subcommand("record", "record a CPU or wall-clock profile of a running process");
  add_pid(record, pid);
  RecordOptions record_options;
  record->add_option("-d,--duration", record_options.seconds, "seconds to record (default: until Ctrl-C)")
      ->check(CLI::Range(0.1, 86400.0));
  record->add_option("--rate", record_options.hz, rate_help())->check(rate_range());
  record->add_flag("--wall", record_options.wall, "wall clock: every thread, running or blocked (default: CPU time)");
  record->add_flag("--threads", record_options.per_thread, "put each thread at the root of its stacks");
  record->add_flag("--by-request", record_options.by_request,
                   "put the request each sample was serving at the root of its stack (\"[request NAME]\", "
                   "\"[no request]\"); pprof files carry it as the label 'request' either way");
  record->add_option("-o,--output", record_options.output,
                     "FILE.html (flame graph), .folded, .speedscope.json or .pb.gz (pprof)")
      ->required();

  auto* heap = app.add_subcommand("heap", "sampled heap profile: who holds memory, who allocates it "
                                          "(needs PERISCOPE_HEAP=on or --start first)");
  add_pid(heap, pid);
  HeapOptions heap_options;
  auto* heap_start = heap->add_flag("--start", heap_options.start,
                                    "turn heap profiling on (until --stop): in use from now on; costs ~a few % "
                                    "on allocation-heavy code");
  heap->add_flag("--stop", heap_options.stop, "turn it off (what it tracked can still be read)")->excludes(heap_start);
  heap->add_option("--rate", heap_options.rate, "with --start: mean bytes between samples (default 524288, as Go)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  heap->add_option("--diff", heap_options.diff_seconds,
                   "read twice, SECONDS apart, and show what grew (leak suspects first)")
      ->check(CLI::Range(1, 86400));
  heap->add_option("--value", heap_options.value,
                   "inuse_space (default), inuse_objects, alloc_space or alloc_objects: what the table and "
                   "non-pprof files show");
  heap->add_option("-n,--top", heap_options.rows, "rows in the table (default 20)")->check(CLI::Range(1, 100000));
  heap->add_option("-o,--output", heap_options.output,
                   "FILE.pb.gz (pprof: all four values, for go tool pprof), .html, .folded or .speedscope.json");
  heap->add_flag("--json", common.json, "print the profile as JSON");

  auto* top = app.add_subcommand("top", "live view of the hottest functions, refreshed every second");
  add_pid(top, pid);
  TopOptions top_options;
  top->add_option("--rate", top_options.hz, rate_help())->check(rate_range());
  top->add_flag("--wall", top_options.wall, "wall clock instead of CPU time");
  top->add_flag("--sort-total", top_options.sort_total, "sort by total share (default: own); keys o/t switch");
  top->add_option("--request", top_options.request,
                  "only samples taken while a thread served this periscope::Request ('-': outside any request)");
  top->add_option("-n,--iterations", top_options.iterations, "stop after this many refreshes (default: until q)")
      ->check(CLI::NonNegativeNumber);

  auto* view = app.add_subcommand("view", "print a profile file as a call tree, or convert it (-o)");
  ViewOptions view_options;
  view->add_option("FILE", view_options.input, ".folded, .speedscope.json or .pb.gz")->required();
  view->add_flag("--bottom-up", view_options.bottom_up, "functions that burn time first, then their callers");
  view->add_option("--min-percent", view_options.min_percent, "hide nodes below this share (default 1)")
      ->check(CLI::Range(0.0, 100.0));
  view->add_option("-o,--output", view_options.output, "convert to this file (format by extension)");
  view->add_flag("--threads", view_options.per_thread, "with -o: put each thread at the root of its stacks");
  view->add_flag("--by-request", view_options.by_request,
                 "with -o: put the request each sample was serving at the root (from a pprof file's labels)");

  auto* inject = app.add_subcommand("inject", "load the agent into a running process started without it "
                                              "(ptrace + dlopen on one thread; the others never stop)");
  InjectOptions inject_options;
  double inject_wait_s = 3;
  add_pid(inject, pid);
  inject->add_flag("--json", common.json, "print what was done as JSON (thread, stopped_us, where, socket)");
  inject->add_option("--http", inject_options.http, "the agent serves HTTP on [HOST:]PORT (PERISCOPE_HTTP)");
  inject->add_option("--socket-dir", inject_options.socket_dir, "the agent's socket directory (PERISCOPE_SOCKET_DIR)");
  inject->add_option("--set", inject_options.settings,
                     "any other setting as NAME=VALUE, e.g. --set SLOW_MS=500 (repeatable; see docs/configuration.md)");
  inject->add_option("--lib", inject_options.library, "the libperiscope.so to load (default: the one beside periscope)");
  inject->add_option("--wait", inject_wait_s, "seconds to wait for a thread at a safe point (default 3)")
      ->check(CLI::Range(0.1, 600.0));

  auto* view_crash = app.add_subcommand("view-crash", "a crash report (the agent's, from stderr or "
                                                      "PERISCOPE_CRASH_LOG) with its frames named");
  std::string crash_file;
  view_crash->add_option("FILE", crash_file, "the report")->required();

  auto* eject = app.add_subcommand("eject", "stop the agent of a process (threads, sockets, signal handlers go; "
                                            "its code stays mapped)");
  add_pid(eject, pid);

  bool inject_first = false;
  app.add_flag("--inject", inject_first,
               "commands that need an agent load one first (periscope inject) if the process has none");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(std::string(e.what()) + " (try 'periscope --help')");
    return kExitUsage;
  }
  common.timeout = std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));

  try {
    const bool needs_agent =
        *metrics || *attach || *slow || *inflight || *record || *top || *exec || *stacks || *heap;
    if (inject_first && needs_agent && !find_agent_socket(pid)) {
      if (int rc = run_inject(pid, InjectOptions{}, common); rc != kExitOk) return rc;
    }
    if (*ps) return run_ps(ps_options, common);
    if (*metrics) return run_metrics(pid, metrics_options, common);
    if (*attach) return run_attach(pid, common);
    if (*stacks) return run_stacks(pid, stacks_options, common);
    if (*slow) return run_slow(pid, follow, common);
    if (*inflight) return run_inflight(pid, inflight_limit, common);
    if (*record) return run_record(pid, record_options, common);
    if (*view) return run_view(view_options);
    if (*top) return run_top(pid, top_options, common);
    if (*heap) return run_heap(pid, heap_options, common);
    if (*inject) {
      inject_options.wait = std::chrono::milliseconds(static_cast<long>(inject_wait_s * 1000));
      return run_inject(pid, inject_options, common);
    }
    if (*eject) return run_eject(pid, common);
    if (*view_crash) return run_view_crash(crash_file);
    if (*exec) {
      auto words = exec->remaining();
      if (words.empty()) {
        print_error("exec needs a COMMAND after the PID (try 'periscope exec " + std::to_string(pid) + " help')");
        return kExitUsage;
      }
      return run_exec(pid, words, common);
    }
  } catch (const CliError& e) {
    print_error(e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitConnection;
  }
  return kExitUsage;
}
