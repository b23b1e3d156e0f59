#include "agent/src/heap/heap_profiles.h"

#include "agent/src/heap/heap_sampler.h"
#include "agent/src/own_symbolizer.h"

namespace periscope::agent {

HeapProfile raw_heap_profile() {
  HeapState state;
  std::vector<HeapStackCounts> stacks = heap_snapshot(&state);
  HeapProfile p;
  p.rate = state.rate;
  p.seconds = state.seconds;
  p.on = state.on;
  p.samples = state.samples;
  p.dropped = state.dropped;
  for (auto& s : stacks) {
    if (s.alloc_objects <= 0) continue;
    p.stacks.push_back({std::move(s.pcs), {}, s.alloc_objects, s.alloc_bytes, s.inuse_objects, s.inuse_bytes});
  }
  return p;
}

HeapProfile named_heap_profile() {
  HeapProfile p = raw_heap_profile();
  auto held = own_symbolizer_lock();
  name_heap_stacks(p, own_symbolizer(held));
  return p;
}

}  // namespace periscope::agent
