#include "agent/src/own_symbolizer.h"

#include <ctime>
#include <exception>
#include <sys/auxv.h>
#include <unistd.h>

namespace periscope::agent {

// A fork child makes its own (the parent's may have been mid-lookup) and leaks the inherited one.
Symbolizer& own_symbolizer() {
  static Symbolizer* symbolizer = nullptr;
  static pid_t owner = 0;
  if (!symbolizer || owner != ::getpid()) {
    symbolizer = new Symbolizer(::getpid());
    owner = ::getpid();
  }
  return *symbolizer;
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
