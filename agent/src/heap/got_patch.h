// For an agent that was not first in the process (`periscope inject`): the loaded modules' calls
// to malloc's family are bound to the allocator's functions, not to the agent's. Heap profiling
// then points each module's GOT entries for them (JUMP_SLOT and GLOB_DAT relocations) at the
// agent's functions, which pass every call on to the allocator as before. A preloaded agent
// uses the same to bypass itself until heap profiling is first started (heap_sampler.h).
//
// libc's own calls (strdup, stdio buffers) go through its GOT too and are patched; the agent's
// functions pass them to the allocator's function by its address, never through a GOT.
// What is left unseen: direct calls inside a module that defines the function (an allocator in
// the executable), the dynamic loader's own allocations, and modules loaded after the last patch (every `heap start` and `heap dump`
// patches what is new). A block allocated before the patch and freed after passes through.
//
// Agent's thread. The loader's lock is held while modules are patched (dl_iterate_phdr), so
// none is unloaded meanwhile; each entry is one aligned 8-byte store, so a thread calling through
// it at that moment calls either the allocator or the agent, both right.
#pragma once

#include <cstddef>
#include <string>

namespace periscope::agent {

struct GotPatchResult {
  size_t modules = 0;  // modules with at least one entry pointed at the agent by this call
  size_t entries = 0;
  std::string error;   // why an entry could not be written (the rest were)
};

// Which entries a patch may write.
struct GotPatchScope {
  // libc's (and libdl's) too; without, they stay as they are (they may be handed blocks of the
  // interposer's bootstrap arena, which only the agent's free may see).
  bool with_libc = true;
  // JUMP_SLOT entries (calls) only. A GLOB_DAT entry gives code the function's address, which it
  // may keep (a deleter, a table of allocation functions): that must stay the process's function.
  bool calls_only = false;
  // When set, an entry is written only while it holds only_where(name), or (calls) the module's
  // own lazy-binding stub: what a patch wrote can be undone exactly, and nothing else is touched.
  void* (*only_where)(const char* name) = nullptr;
};

// `target(name)`: the function a symbol's entries should hold (the agent's, or the allocator's
// to bypass the agent), or null for names left alone.
GotPatchResult patch_allocation_got(void* (*target)(const char* name), const GotPatchScope& scope = {});

}  // namespace periscope::agent
