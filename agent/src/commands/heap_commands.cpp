// heap: start, stop, status and dump of the sampled heap profile (agent/src/heap/).
//
// Unlike a CPU profile, heap sampling is a mode of the process, not a window owned by a client:
// what it tells (memory still held) is built up from the moment it starts, and a leak is found by
// reading it again later. It runs until `heap stop` (or for the process's life with PERISCOPE_HEAP=on).
#include <cstdlib>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/heap/heap_profiles.h"
#include "agent/src/heap/heap_sampler.h"

namespace periscope::agent {

namespace {

using protocol::Reply;

nlohmann::json state_json(const HeapState& s) {
  return {{"on", s.on},           {"rate", s.rate},       {"seconds", s.seconds},
          {"samples", s.samples}, {"tracked", s.tracked}, {"dropped", s.dropped},
          {"inuse_bytes", s.inuse_bytes}, {"alloc_bytes", s.alloc_bytes}};
}

std::string describe(const HeapState& s) {
  if (!s.on && s.rate == 0) return "heap profiling is off (never started)\n";
  return std::string(s.on ? "on" : "stopped") + ": every " + human_bytes(static_cast<double>(s.rate)) +
         " allocated on average, for " + std::to_string(static_cast<long>(s.seconds)) + " s; " +
         std::to_string(s.samples) + " allocations sampled; est. " + human_bytes(s.inuse_bytes) + " in use of " +
         human_bytes(s.alloc_bytes) + " allocated since\n";
}

Reply start(const LiveParts& parts, const manhole::Args& args) {
  uint64_t rate = kDefaultHeapRate;
  if (parts.facts) {
    if (auto facts = parts.facts()) rate = facts->options.heap_rate;
  }
  if (args.size() > 2) return Reply::failure("heap start: takes at most one argument, BYTES between samples");
  if (args.size() == 2) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(args[1].c_str(), &end, 10);
    if (!end || *end != '\0' || v < 1 || v > (1ull << 40) || args[1][0] == '-') {
      return Reply::failure("heap start: BYTES must be a number of bytes, 1.." + std::to_string(1ull << 40) + ", not '" +
                            args[1] + "'");
    }
    rate = v;
  }
  if (args.size() == 1) {  // no rate asked: keep the running one
    if (const HeapState running = heap_state(); running.on) rate = running.rate;
  }
  std::string note;
  if (auto err = start_heap_sampling(rate, &note); !err.empty()) return Reply::failure("heap start: " + err);
  HeapState s = heap_state();
  nlohmann::json data = state_json(s);
  if (!note.empty()) data["note"] = note;
  return Reply::success("heap profiling " + describe(s) + (note.empty() ? "" : "note: " + note + "\n"), std::move(data));
}

Reply heap(const LiveParts& parts, const manhole::Args& args) {
  const std::string& action = args[0];
  if (action == "start") return start(parts, args);
  if (action == "stop") {
    stop_heap_sampling();
    HeapState s = heap_state();
    return Reply::success("heap profiling " + describe(s), state_json(s));
  }
  if (action == "status") {
    HeapState s = heap_state();
    nlohmann::json data = state_json(s);
    if (auto problem = heap_sampling_unavailable(); !problem.empty()) data["unavailable"] = problem;
    return Reply::success(describe(s), std::move(data));
  }
  if (action == "dump") {
    HeapState s = heap_state();
    if (!s.on && s.rate == 0) {
      const std::string problem = heap_sampling_unavailable();
      return Reply::failure("heap dump: heap profiling is off; start it with 'heap start' (or PERISCOPE_HEAP=on)" +
                            (problem.empty() ? std::string() : "; but " + problem));
    }
    refresh_heap_patches();
    if (args.size() > 1 && args[1] == "--raw") {
      return Reply::success("heap profile with addresses only (--raw)\n", heap_profile_to_json(raw_heap_profile()));
    }
    HeapProfile p = named_heap_profile();
    return Reply::success(render_heap_top(p, HeapValue::kInuseSpace, 20), heap_profile_to_json(p));
  }
  return Reply::failure("heap: unknown action '" + action + "' (start, stop, status or dump)");
}

}  // namespace

std::string add_heap_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  manhole::Command command{"heap", "ACTION [ARGS...]",
                           "sampled heap profiling: start [BYTES] (mean bytes between samples; runs until stop), "
                           "stop, status, dump [--raw] (in use by function; --raw: addresses as JSON)",
                           [&parts](const manhole::Args& args) { return heap(parts, args); }};
  command.changes_state = true;
  return registry.add(std::move(command));
}

}  // namespace periscope::agent
