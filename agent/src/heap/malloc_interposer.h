// malloc, free and the rest of the C and C++ allocation functions, as the host calls them: each
// passes to the allocator loaded after the agent (glibc's, or a jemalloc/tcmalloc preloaded or
// linked after it), and tells the heap sampler (heap_sampler.h) when it is on.
//
// Exported from libperiscope.so (exports.map). Not built into sanitizer builds: ASan and TSan
// replace malloc themselves.
#pragma once

#include <string>

namespace periscope::agent {

// Empty when the process's malloc is the agent's (the agent was preloaded or linked before the
// allocator), else why heap profiling cannot see its allocations.
std::string malloc_interposer_problem();

// The agent's function for one of malloc's family by name ("malloc", "free", ...), or null (other
// names, and sanitizer builds, which have none): what an injected agent points GOT entries at.
void* own_allocation_function(const char* name);
// The allocator's function after the agent by the same name (null where the agent has none, or
// fills the gap itself): what entries point at while heap profiling has never been on.
void* next_allocation_function(const char* name);

}  // namespace periscope::agent
