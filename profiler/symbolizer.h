// Turns code addresses of one process into frames: demangled function, file:line, inlined frames
// (each its own frame, marked), or module+0xoffset where no symbol exists. Uses elfutils libdwfl
// with local debug info only (the binary itself, /usr/lib/debug/.build-id): it never downloads.
//
// Threading: libdw is not thread-safe; one Symbolizer is used by one thread at a time.
// Results are cached per address; libraries loaded later (dlopen) are found by re-reading the
// process's module list when an address falls outside every known module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

namespace periscope {

struct Frame {
  uint64_t pc = 0;
  std::string function;  // demangled; empty when unknown
  std::string file;      // full path as in the debug info; empty when unknown
  int line = 0;
  std::string module;    // file name of the ELF object, e.g. "libc.so.6"
  uint64_t module_offset = 0;  // address in the ELF file's own terms (for addr2line -e module)
  bool inlined = false;        // an inlined call inside the next frame
};

class Symbolizer {
 public:
  explicit Symbolizer(pid_t pid);  // the process whose addresses these are (getpid() for ourselves)
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // The frames at `pc`, innermost (inlined) first. `return_address`: pc is where a call returns
  // to, so the call itself is looked up (pc - 1); false for an interrupted pc.
  std::vector<Frame> symbolize(uint64_t pc, bool return_address);
  // "" when ready, else why symbolization is unavailable (frames then carry addresses only).
  const std::string& error() const { return error_; }

 private:
  bool report_modules();
  std::vector<Frame> lookup(uint64_t pc, uint64_t addr);

  struct DwflHandle;
  std::unique_ptr<DwflHandle> dwfl_;
  pid_t pid_;
  unsigned long long loaded_generation_ = 0;  // ourselves: dlopen/dlclose count when last reported
  std::string error_;
  std::unordered_map<uint64_t, std::vector<Frame>> cache_;  // key: looked-up address
};

// "function (file:line)", "[inlined] function (file:line)", or "module+0x1234"; with
// `full_names` false the function reads as short_function_name() gives it.
std::string describe_frame(const Frame& frame, bool full_names = true);

}  // namespace periscope
