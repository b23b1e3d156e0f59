// elfutils' libdw, loaded when the agent first symbolizes in-process, not when the host starts.
// Linking libdw would map it and what it pulls in (libelf, liblzma, libbz2) into every host at
// exec, and every fork then copies those mappings, whether or not anybody ever asks for a stack
// (a fork-per-connection server pays on each connection; bench/fork_cost.sh). These definitions
// stand in for the functions of libdw the agent's symbolizer calls (profiler/symbolizer.cpp);
// each finds the real one by dlopen/dlsym on its first call. The viewer links libdw as usual.
//
// Hidden, like everything in the agent but its API (exports.map): the host's own use of libdw
// is untouched. Where libdw.so.1 cannot be loaded, the calls fail as libdw's own do (null, -1)
// and dwfl_errmsg says why; the agent then falls back to what it does without debug info.
#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <type_traits>

namespace {

void* libdw_symbol(const char* name) {
  static void* const library = ::dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
  return library ? ::dlsym(library, name) : nullptr;
}

template <typename T>
T failed() {
  if constexpr (std::is_pointer_v<T>) return nullptr;
  else return static_cast<T>(-1);
}

}  // namespace

// One definition per function: the real one, resolved once, or libdw's own failure value.
#define PERISCOPE_LAZY(ret, name, params, args)                                          \
  extern "C" ret name params {                                                           \
    static const auto real = reinterpret_cast<decltype(&::name)>(libdw_symbol(#name)); \
    if (!real) return failed<ret>();                                                     \
    return real args;                                                                    \
  }
#define PERISCOPE_LAZY_VOID(name, params, args)                                          \
  extern "C" void name params {                                                          \
    static const auto real = reinterpret_cast<decltype(&::name)>(libdw_symbol(#name)); \
    if (real) real args;                                                                 \
  }

extern "C" const char* dwfl_errmsg(int err) {
  static const auto real = reinterpret_cast<decltype(&::dwfl_errmsg)>(libdw_symbol("dwfl_errmsg"));
  return real ? real(err) : "libdw.so.1 could not be loaded (elfutils' libdw1 package)";
}

PERISCOPE_LAZY(Dwfl*, dwfl_begin, (const Dwfl_Callbacks* callbacks), (callbacks))
PERISCOPE_LAZY_VOID(dwfl_end, (Dwfl* dwfl), (dwfl))
PERISCOPE_LAZY(Dwfl_Module*, dwfl_addrmodule, (Dwfl* dwfl, Dwarf_Addr address), (dwfl, address))
PERISCOPE_LAZY(int, dwfl_build_id_find_debuginfo,
               (Dwfl_Module* mod, void** userdata, const char* name, Dwarf_Addr base, const char* file,
                const char* debuglink, GElf_Word crc, char** debuginfo),
               (mod, userdata, name, base, file, debuglink, crc, debuginfo))
PERISCOPE_LAZY(int, dwfl_linux_proc_find_elf,
               (Dwfl_Module* mod, void** userdata, const char* name, Dwarf_Addr base, char** file, Elf** elf),
               (mod, userdata, name, base, file, elf))
PERISCOPE_LAZY(int, dwfl_linux_proc_report, (Dwfl* dwfl, pid_t pid), (dwfl, pid))
PERISCOPE_LAZY(ptrdiff_t, dwfl_getmodules,
               (Dwfl* dwfl, int (*callback)(Dwfl_Module*, void**, const char*, Dwarf_Addr, void*), void* arg,
                ptrdiff_t offset),
               (dwfl, callback, arg, offset))
PERISCOPE_LAZY(const char*, dwfl_lineinfo,
               (Dwfl_Line* line, Dwarf_Addr* addr, int* linep, int* colp, Dwarf_Word* mtime, Dwarf_Word* length),
               (line, addr, linep, colp, mtime, length))
PERISCOPE_LAZY(Dwarf_Die*, dwfl_module_addrdie, (Dwfl_Module* mod, Dwarf_Addr addr, Dwarf_Addr* bias),
               (mod, addr, bias))
PERISCOPE_LAZY(const char*, dwfl_module_addrinfo,
               (Dwfl_Module* mod, GElf_Addr address, GElf_Off* offset, GElf_Sym* sym, GElf_Word* shndxp,
                Elf** elfp, Dwarf_Addr* bias),
               (mod, address, offset, sym, shndxp, elfp, bias))
PERISCOPE_LAZY(Elf*, dwfl_module_getelf, (Dwfl_Module* mod, GElf_Addr* bias), (mod, bias))
PERISCOPE_LAZY(Dwfl_Line*, dwfl_module_getsrc, (Dwfl_Module* mod, Dwarf_Addr addr), (mod, addr))
PERISCOPE_LAZY(const char*, dwfl_module_info,
               (Dwfl_Module* mod, void*** userdata, Dwarf_Addr* start, Dwarf_Addr* end, Dwarf_Addr* dwbias,
                Dwarf_Addr* symbias, const char** mainfile, const char** debugfile),
               (mod, userdata, start, end, dwbias, symbias, mainfile, debugfile))
PERISCOPE_LAZY_VOID(dwfl_report_begin, (Dwfl* dwfl), (dwfl))
PERISCOPE_LAZY(Dwfl_Module*, dwfl_report_elf,
               (Dwfl* dwfl, const char* name, const char* file_name, int fd, GElf_Addr base, bool add_p_vaddr),
               (dwfl, name, file_name, fd, base, add_p_vaddr))
PERISCOPE_LAZY(int, dwfl_report_end,
               (Dwfl* dwfl, int (*removed)(Dwfl_Module*, void*, const char*, Dwarf_Addr, void*), void* arg),
               (dwfl, removed, arg))
PERISCOPE_LAZY(Dwarf_Attribute*, dwarf_attr, (Dwarf_Die* die, unsigned int search_name, Dwarf_Attribute* result),
               (die, search_name, result))
PERISCOPE_LAZY(Dwarf_Attribute*, dwarf_attr_integrate,
               (Dwarf_Die* die, unsigned int search_name, Dwarf_Attribute* result), (die, search_name, result))
PERISCOPE_LAZY(const char*, dwarf_filesrc, (Dwarf_Files* file, size_t idx, Dwarf_Word* mtime, Dwarf_Word* length),
               (file, idx, mtime, length))
PERISCOPE_LAZY(const char*, dwarf_formstring, (Dwarf_Attribute* attr), (attr))
PERISCOPE_LAZY(int, dwarf_formudata, (Dwarf_Attribute* attr, Dwarf_Word* value), (attr, value))
PERISCOPE_LAZY(int, dwarf_getscopes, (Dwarf_Die* cudie, Dwarf_Addr pc, Dwarf_Die** scopes), (cudie, pc, scopes))
PERISCOPE_LAZY(int, dwarf_getscopes_die, (Dwarf_Die* die, Dwarf_Die** scopes), (die, scopes))
PERISCOPE_LAZY(int, dwarf_getsrcfiles, (Dwarf_Die* cudie, Dwarf_Files** files, size_t* nfiles),
               (cudie, files, nfiles))
PERISCOPE_LAZY(int, dwarf_tag, (Dwarf_Die* die), (die))
