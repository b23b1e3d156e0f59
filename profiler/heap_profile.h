// A heap profile: per allocating stack, the estimated objects and bytes allocated and still in use
// (Go's four sample types). The agent sends it with addresses (`heap dump --raw`); the viewer names
// them and writes pprof (what `go tool pprof`, Pyroscope and Parca read), folded stacks or the HTML
// flame graph of one of the four values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiler/profile.h"
#include "profiler/symbolizer.h"

namespace periscope {

struct HeapStack {
  std::vector<uint64_t> pcs;        // as the agent sent them (innermost first), or empty
  std::vector<std::string> frames;  // root first, once named
  double alloc_objects = 0;         // estimates: sampled blocks scaled by their probability
  double alloc_bytes = 0;
  double inuse_objects = 0;
  double inuse_bytes = 0;
};

struct HeapProfile {
  uint64_t rate = 0;       // mean bytes between samples
  double seconds = 0;      // what the alloc_* values cover: since sampling began, or a delta's window
  bool delta = false;      // the difference of two profiles (`--diff`, `?seconds=N`)
  bool on = false;         // sampling was on when it was taken
  uint64_t samples = 0;    // allocations sampled
  uint64_t dropped = 0;    // samples the agent's table had no room for
  std::vector<HeapStack> stacks;
};

enum class HeapValue { kInuseSpace, kInuseObjects, kAllocSpace, kAllocObjects };
// "inuse_space" and so on (pprof's names); nullopt-like: false for an unknown name.
bool heap_value_from_name(const std::string& name, HeapValue* value);
const char* heap_value_name(HeapValue value);

nlohmann::json heap_profile_to_json(const HeapProfile& profile);  // with pcs when frames are empty
HeapProfile heap_profile_from_json(const nlohmann::json& json);   // throws on malformed input
// Names the stacks' pcs (the agent's `heap dump --raw`).
void name_heap_stacks(HeapProfile& profile, Symbolizer& symbolizer);

// `after` minus `before`, stack by stack (same pcs, or same frames when unnamed): what was
// allocated in between, and how in-use memory changed (negative: freed).
HeapProfile heap_delta(const HeapProfile& before, const HeapProfile& after);

// One value as the Profile every other output reads (counts: bytes or objects; negative values of a
// delta count as 0), mode "heap".
Profile heap_as_profile(const HeapProfile& profile, HeapValue value);

// Gzipped pprof with Go's sample types; `default_value` is what pprof shows first (inuse_space for
// /debug/pprof/heap, alloc_space for /debug/pprof/allocs).
std::string heap_to_pprof_gz(const HeapProfile& profile, HeapValue default_value);

// The terminal's table: the `rows` functions with the most of `value`, flat (allocated right there)
// and cumulative (anywhere below them), from named stacks. Sorted by flat; a delta's negatives last.
std::string render_heap_top(const HeapProfile& profile, HeapValue value, size_t rows);


}  // namespace periscope
