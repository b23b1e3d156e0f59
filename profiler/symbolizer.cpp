#include "profiler/symbolizer.h"

#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <cstddef>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "profiler/function_names.h"

namespace periscope {

namespace {

char* g_debuginfo_path = nullptr;  // libdwfl's default search path (".debug", /usr/lib/debug)

// Local files only: the module itself and /usr/lib/debug/.build-id; never debuginfod.
const Dwfl_Callbacks kProcCallbacks = {
    dwfl_linux_proc_find_elf,
    dwfl_build_id_find_debuginfo,
    nullptr,
    &g_debuginfo_path,
};

std::string demangle(const char* name) {
  if (!name) return {};
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || !out) return name;
  std::string result = out;
  std::free(out);
  return result;
}

std::string base_name(const char* path) {
  if (!path) return {};
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// The name of a subprogram or inlined subroutine DIE, following abstract origins.
std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (dwarf_attr_integrate(die, at, &attr)) {
      if (const char* n = dwarf_formstring(&attr)) return demangle(n);
    }
  }
  if (dwarf_attr_integrate(die, DW_AT_name, &attr)) {
    if (const char* n = dwarf_formstring(&attr)) return n;
  }
  return {};
}

// The call site (DW_AT_call_file / DW_AT_call_line) of an inlined subroutine.
void call_site(Dwarf_Die* cu, Dwarf_Die* inlined, std::string* file, int* line) {
  Dwarf_Attribute attr;
  Dwarf_Word value = 0;
  *line = 0;
  if (dwarf_attr(inlined, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &value) == 0) {
    *line = static_cast<int>(value);
  }
  file->clear();
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  if (dwarf_attr(inlined, DW_AT_call_file, &attr) && dwarf_formudata(&attr, &value) == 0 &&
      dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && value < nfiles) {
    if (const char* f = dwarf_filesrc(files, value, nullptr, nullptr)) *file = f;
  }
}

// Our own modules, from the dynamic loader rather than /proc/self/maps: libelf maps the files it
// reads into this very process, and those extra mappings would stretch a module's address range
// over libraries loaded later (a dlopen'ed plugin would be named libgcc_s).
int report_loaded_object(dl_phdr_info* info, size_t, void* arg) {
  auto* dwfl = static_cast<Dwfl*>(arg);
  std::string path = info->dlpi_name ? info->dlpi_name : "";
  if (path.empty()) {  // the main executable
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    path.assign(exe, static_cast<size_t>(n));
  }
  if (path[0] != '/') return 0;  // linux-vdso.so.1 has no file (frames there are named "[vdso]")
  if (char* real = ::realpath(path.c_str(), nullptr)) {  // libstdc++.so.6 -> libstdc++.so.6.0.30, as in maps
    path = real;
    std::free(real);
  }
  dwfl_report_elf(dwfl, base_name(path.c_str()).c_str(), path.c_str(), -1, info->dlpi_addr, false);
  return 0;
}

// The kernel's vDSO (clock_gettime and friends) in our own process.
bool in_vdso(uint64_t addr) {
  static const auto range = [] {
    std::pair<uint64_t, uint64_t> r{0, 0};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* arg) {
          if (!info->dlpi_name || std::strstr(info->dlpi_name, "vdso") == nullptr) return 0;
          auto* out = static_cast<std::pair<uint64_t, uint64_t>*>(arg);
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const auto& ph = info->dlpi_phdr[i];
            if (ph.p_type != PT_LOAD) continue;
            uint64_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
            if (out->first == 0 || lo < out->first) out->first = lo;
            if (hi > out->second) out->second = hi;
          }
          return 1;
        },
        &r);
    return r;
  }();
  return addr >= range.first && addr < range.second;
}

}  // namespace

struct Symbolizer::DwflHandle {
  Dwfl* dwfl = nullptr;
  ~DwflHandle() {
    if (dwfl) dwfl_end(dwfl);
  }
};

namespace {

// How many times the dynamic linker has loaded or unloaded an object in this process (glibc
// counts them in every dl_phdr_info): cheaper than asking libdwfl to compare module lists.
int read_load_counts(dl_phdr_info* info, size_t size, void* arg) {
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    *static_cast<unsigned long long*>(arg) = info->dlpi_adds + info->dlpi_subs;
  }
  return 1;  // the first object says it for all
}

unsigned long long loaded_objects_generation() {
  unsigned long long generation = 0;
  dl_iterate_phdr(read_load_counts, &generation);
  return generation;
}

}  // namespace

Symbolizer::Symbolizer(pid_t pid) : dwfl_(std::make_unique<DwflHandle>()), pid_(pid) {
  dwfl_->dwfl = dwfl_begin(&kProcCallbacks);
  if (!dwfl_->dwfl) {
    error_ = std::string("libdwfl: ") + dwfl_errmsg(-1);
    return;
  }
  report_modules();
}

Symbolizer::~Symbolizer() = default;

bool Symbolizer::report_modules() {
  // A process that has exited has no module list to read: keep the one we have (a record
  // names its last checkpoint after the target is gone), rather than report none.
  if (pid_ != ::getpid() && ::access(("/proc/" + std::to_string(pid_) + "/maps").c_str(), R_OK) != 0 &&
      dwfl_->dwfl && dwfl_getmodules(dwfl_->dwfl, [](Dwfl_Module*, void**, const char*, Dwarf_Addr, void*) -> int {
        return DWARF_CB_ABORT;
      }, nullptr, 0) != 0) {
    return false;
  }
  if (pid_ == ::getpid()) {
    // Our own modules again (a library was loaded since): into a new Dwfl. Reported again into the
    // same one (dwfl_report_begin, unchanged modules kept), every module but the new ones stopped
    // being found (elfutils 0.188; Symbolizer.ALibraryLoadedSinceKeepsEveryModuleNamed). What
    // was loaded of them is read again on use.
    if (loaded_generation_ != 0) {
      auto fresh = std::make_unique<DwflHandle>();
      fresh->dwfl = dwfl_begin(&kProcCallbacks);
      if (!fresh->dwfl) {
        error_ = std::string("libdwfl: ") + dwfl_errmsg(-1);
        return false;
      }
      dwfl_ = std::move(fresh);
    }
    loaded_generation_ = loaded_objects_generation();
  }
  dwfl_report_begin(dwfl_->dwfl);  // unchanged modules keep what they have loaded
  int r = pid_ == ::getpid() ? (dl_iterate_phdr(report_loaded_object, dwfl_->dwfl), 0)
                             : dwfl_linux_proc_report(dwfl_->dwfl, pid_);
  dwfl_report_end(dwfl_->dwfl, nullptr, nullptr);
  if (r != 0) {
    error_ = "cannot read the module list of process " + std::to_string(pid_) + ": " +
             (r > 0 ? std::strerror(r) : dwfl_errmsg(-1));
    return false;
  }
  error_.clear();
  return true;
}

std::vector<Frame> Symbolizer::symbolize(uint64_t pc, bool return_address) {
  const uint64_t addr = return_address && pc > 0 ? pc - 1 : pc;
  auto cached = cache_.find(addr);
  if (cached != cache_.end()) return cached->second;
  // An address outside every module: a library loaded since we last looked, or just an address
  // in no file ([vdso], JIT code, a garbage frame), which must not cost a new report each time.
  if (dwfl_->dwfl && !dwfl_addrmodule(dwfl_->dwfl, addr) &&
      (pid_ != ::getpid() || loaded_objects_generation() != loaded_generation_)) {
    report_modules();
    cache_.clear();
  }
  auto frames = lookup(pc, addr);
  cache_.emplace(addr, frames);
  return frames;
}

std::vector<Frame> Symbolizer::lookup(uint64_t pc, uint64_t addr) {
  Frame outer;
  outer.pc = pc;
  Dwfl_Module* mod = dwfl_->dwfl ? dwfl_addrmodule(dwfl_->dwfl, addr) : nullptr;
  if (!mod) {
    if (pid_ == ::getpid() && in_vdso(addr)) {
      // The vDSO has no file for libdwfl, but the dynamic linker knows its symbols, as perf does.
      outer.module = "[vdso]";
      Dl_info info{};
      if (::dladdr(reinterpret_cast<void*>(addr), &info) != 0 && info.dli_sname) {
        outer.function = info.dli_sname;
        outer.module_offset = addr - reinterpret_cast<uint64_t>(info.dli_fbase);
      }
    }
    return {outer};
  }
  const char* main_file = nullptr;
  const char* mod_name = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, &main_file, nullptr);
  outer.module = base_name(main_file ? main_file : mod_name);
  Dwarf_Addr elf_bias = 0;
  outer.module_offset = dwfl_module_getelf(mod, &elf_bias) ? pc - elf_bias : pc;

  GElf_Off sym_offset = 0;
  GElf_Sym sym;
  outer.function = demangle(dwfl_module_addrinfo(mod, addr, &sym_offset, &sym, nullptr, nullptr, nullptr));

  std::string file;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, addr)) {
    if (const char* f = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr)) file = f;
  }

  std::vector<Frame> frames;
  Dwarf_Addr cu_bias = 0;
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, addr, &cu_bias)) {
    // dwarf_getscopes finds the innermost scope, but past an inline instance it continues with the
    // inlined function's abstract scopes; dwarf_getscopes_die gives the concrete nesting.
    Dwarf_Die* innermost = nullptr;
    Dwarf_Die* scopes = nullptr;
    int n = 0;
    if (dwarf_getscopes(cu, addr - cu_bias, &innermost) > 0) n = dwarf_getscopes_die(&innermost[0], &scopes);
    std::free(innermost);
    for (int i = 0; i < n; ++i) {
      int tag = dwarf_tag(&scopes[i]);
      if (tag == DW_TAG_inlined_subroutine) {
        Frame f = outer;
        f.function = die_function_name(&scopes[i]);
        f.file = file;
        f.line = line;
        f.inlined = true;
        frames.push_back(std::move(f));
        call_site(cu, &scopes[i], &file, &line);  // where the next frame out called it
      } else if (tag == DW_TAG_subprogram) {
        if (outer.function.empty()) outer.function = die_function_name(&scopes[i]);
        break;
      }
    }
    std::free(scopes);
  }
  outer.file = file;
  outer.line = line;
  frames.push_back(std::move(outer));
  return frames;
}

std::string describe_frame(const Frame& f, bool full_names) {
  if (f.function.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(f.module_offset));
    if (f.module == "[vdso]") return f.module;
    if (!f.module.empty()) return f.module + buf;
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(f.pc));
    return buf;
  }
  std::string out = (f.inlined ? "[inlined] " : "") + (full_names ? f.function : short_function_name(f.function));
  if (!f.file.empty()) out += " (" + base_name(f.file.c_str()) + ":" + std::to_string(f.line) + ")";
  else if (!f.module.empty()) out += " (" + f.module + ")";
  return out;
}

}  // namespace periscope
