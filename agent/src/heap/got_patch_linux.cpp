#include "agent/src/heap/got_patch.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

namespace periscope::agent {

namespace {

struct Walk {
  void* (*target)(const char*);
  GotPatchScope scope;
  uintptr_t own_base;
  GotPatchResult result;
};

// The loader stores most dynamic-section addresses relocated; the vDSO's are not.
uintptr_t absolute(uintptr_t base, uintptr_t ptr) { return ptr < base ? ptr + base : ptr; }

bool is_loader(const char* name) {
  return std::strstr(name, "/ld-linux") != nullptr || std::strstr(name, "/ld64.so") != nullptr;
}

bool is_libc(const char* name) {
  return std::strstr(name, "/libc.so") != nullptr || std::strstr(name, "/libdl.so") != nullptr;
}

// Writes `value` at `slot`, making its page writable for the moment if RELRO made it read-only.
bool write_slot(uintptr_t slot, void* value, uintptr_t relro_begin, uintptr_t relro_end, std::string* error) {
  if (*reinterpret_cast<void**>(slot) == value) return false;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t start = slot & ~(page - 1);
  const bool relro = slot >= relro_begin && slot < relro_end;
  if (relro && ::mprotect(reinterpret_cast<void*>(start), page, PROT_READ | PROT_WRITE) != 0) {
    *error = std::string("mprotect: ") + std::strerror(errno);
    return false;
  }
  __atomic_store_n(reinterpret_cast<void**>(slot), value, __ATOMIC_RELEASE);
  if (relro) (void)::mprotect(reinterpret_cast<void*>(start), page, PROT_READ);
  return true;
}

int patch_module(dl_phdr_info* module, size_t, void* data) {
  auto* walk = static_cast<Walk*>(data);
  const uintptr_t base = module->dlpi_addr;
  const char* name = module->dlpi_name ? module->dlpi_name : "";
  if (base == walk->own_base || is_loader(name) || std::strstr(name, "linux-vdso") != nullptr) return 0;
  if (!walk->scope.with_libc && is_libc(name)) return 0;
  const ElfW(Dyn)* dynamic = nullptr;
  uintptr_t relro_begin = 0, relro_end = 0;
  uintptr_t module_begin = UINTPTR_MAX, module_end = 0;  // its mappings: a lazy stub points in
  for (int i = 0; i < module->dlpi_phnum; ++i) {
    const auto& ph = module->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      if (base + ph.p_vaddr < module_begin) module_begin = base + ph.p_vaddr;
      if (base + ph.p_vaddr + ph.p_memsz > module_end) module_end = base + ph.p_vaddr + ph.p_memsz;
    }
    if (ph.p_type == PT_DYNAMIC) dynamic = reinterpret_cast<const ElfW(Dyn)*>(base + ph.p_vaddr);
    if (ph.p_type == PT_GNU_RELRO) {
      relro_begin = base + ph.p_vaddr;
      relro_end = relro_begin + ph.p_memsz;
    }
  }
  if (!dynamic) return 0;
  const ElfW(Sym)* symbols = nullptr;
  const char* strings = nullptr;
  const ElfW(Rela)* tables[2] = {nullptr, nullptr};
  size_t sizes[2] = {0, 0};
  for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symbols = reinterpret_cast<const ElfW(Sym)*>(absolute(base, d->d_un.d_ptr)); break;
      case DT_STRTAB: strings = reinterpret_cast<const char*>(absolute(base, d->d_un.d_ptr)); break;
      case DT_JMPREL: tables[0] = reinterpret_cast<const ElfW(Rela)*>(absolute(base, d->d_un.d_ptr)); break;
      case DT_PLTRELSZ: sizes[0] = d->d_un.d_val; break;
      case DT_RELA: tables[1] = reinterpret_cast<const ElfW(Rela)*>(absolute(base, d->d_un.d_ptr)); break;
      case DT_RELASZ: sizes[1] = d->d_un.d_val; break;
      default: break;
    }
  }
  if (!symbols || !strings) return 0;
  size_t patched = 0;
  for (int t = 0; t < 2; ++t) {
    if (!tables[t]) continue;
    for (size_t i = 0; i < sizes[t] / sizeof(ElfW(Rela)); ++i) {
      const ElfW(Rela)& r = tables[t][i];
      const auto type = ELF64_R_TYPE(r.r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
      if (walk->scope.calls_only && type != R_X86_64_JUMP_SLOT) continue;
      const ElfW(Sym)& symbol = symbols[ELF64_R_SYM(r.r_info)];
      if (symbol.st_name == 0) continue;
      void* target = walk->target(strings + symbol.st_name);
      if (!target) continue;
      if (walk->scope.only_where) {
        const auto current = reinterpret_cast<uintptr_t>(*reinterpret_cast<void* const*>(base + r.r_offset));
        const bool lazy_stub = type == R_X86_64_JUMP_SLOT && current >= module_begin && current < module_end;
        if (!lazy_stub && current != reinterpret_cast<uintptr_t>(walk->scope.only_where(strings + symbol.st_name))) {
          continue;
        }
      }
      if (write_slot(base + r.r_offset, target, relro_begin, relro_end, &walk->result.error)) ++patched;
    }
  }
  if (patched > 0) {
    ++walk->result.modules;
    walk->result.entries += patched;
  }
  return 0;
}

}  // namespace

GotPatchResult patch_allocation_got(void* (*target)(const char* name), const GotPatchScope& scope) {
  Walk walk{target, scope, 0, {}};
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&patch_allocation_got), &info)) {
    walk.own_base = reinterpret_cast<uintptr_t>(info.dli_fbase);
  }
  ::dl_iterate_phdr(patch_module, &walk);
  return walk.result;
}

}  // namespace periscope::agent
