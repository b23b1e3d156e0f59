#include "agent/src/own_symbolizer.h"

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

}  // namespace periscope::agent
