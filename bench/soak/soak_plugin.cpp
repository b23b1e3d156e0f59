// A small library that bench/soak/soak_host dlopens and dlcloses over and over, from many threads
// at once, while the agent samples and unwinds them: its code, its unwind tables and its static
// constructor come and go under the profiler's feet.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

// Runs at every dlopen that maps the library, and its destructor at the dlclose that unmaps it.
struct LoadMark {
  LoadMark() : value(0x9e3779b97f4a7c15ull) {}
  ~LoadMark() { value = 0; }
  volatile uint64_t value;
};
LoadMark g_mark;

__attribute__((noinline)) uint64_t plugin_recurse(uint64_t x, int depth) {
  if (depth <= 0) {
    if (x % 5 == 0) throw std::runtime_error("soak plugin: " + std::to_string(x % 1000));
    return x ^ g_mark.value;
  }
  uint64_t below = plugin_recurse(x * 6364136223846793005ull + 1442695040888963407ull, depth - 1);
  return below + static_cast<uint64_t>(depth);  // not a tail call: every frame stays on the stack
}

}  // namespace

// Deterministic in (x, depth); throws (a std::runtime_error, through libstdc++) for one x in five.
extern "C" __attribute__((visibility("default"))) uint64_t soak_plugin_mix(uint64_t x, int depth) {
  return plugin_recurse(x, depth);
}
