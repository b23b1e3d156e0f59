#include "agent/src/own_symbolizer.h"

#include <chrono>
#include <ctime>
#include <exception>
#include <malloc.h>
#include <sys/auxv.h>
#include <unistd.h>

namespace periscope::agent {

namespace {

constexpr auto kIdleBeforeRelease = std::chrono::seconds(10);

Symbolizer* g_symbolizer = nullptr;
pid_t g_owner = 0;
std::chrono::steady_clock::time_point g_last_use;

}  // namespace

// A fork child makes its own (the parent's may have been mid-lookup) and leaks the inherited one.
Symbolizer& own_symbolizer() {
  if (!g_symbolizer || g_owner != ::getpid()) {
    g_symbolizer = new Symbolizer(::getpid());
    g_owner = ::getpid();
  }
  g_last_use = std::chrono::steady_clock::now();
  return *g_symbolizer;
}

void release_own_symbolizer_if_idle() {
  if (!g_symbolizer || g_owner != ::getpid()) return;
  if (std::chrono::steady_clock::now() - g_last_use < kIdleBeforeRelease) return;
  delete g_symbolizer;  // closes the ELF and debug files, unmaps them, frees libdw's caches
  g_symbolizer = nullptr;
  ::malloc_trim(0);
}

void warm_own_symbolizer() {
  Symbolizer& symbolizer = own_symbolizer();
  const uint64_t addresses[] = {
      static_cast<uint64_t>(::getauxval(AT_ENTRY)),           // the main program
      reinterpret_cast<uint64_t>(&::clock_gettime),           // libc
      reinterpret_cast<uint64_t>(&std::current_exception),    // libstdc++
  };
  for (uint64_t pc : addresses) {
    if (pc != 0) (void)symbolizer.symbolize(pc, false);
  }
}

}  // namespace periscope::agent
