#include "viewer/inject/remote_symbols.h"

#include <cstring>
#include <gelf.h>
#include <libelf.h>
#include <sstream>
#include <vector>

#include "profiler/proc_reader.h"
#include "viewer/elf_file.h"

namespace periscope::viewer {

namespace {

std::string file_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::optional<uint64_t> dynamic_symbol(Elf* elf, const char* name) {
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* versym = nullptr;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    if (sh.sh_type == SHT_DYNSYM) dynsym = scn;
    if (sh.sh_type == SHT_GNU_versym) versym = scn;
  }
  if (!dynsym) return std::nullopt;
  GElf_Shdr sh;
  gelf_getshdr(dynsym, &sh);
  Elf_Data* syms = elf_getdata(dynsym, nullptr);
  Elf_Data* versions = versym ? elf_getdata(versym, nullptr) : nullptr;
  if (!syms || sh.sh_entsize == 0) return std::nullopt;
  std::optional<uint64_t> hidden_match;
  for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(syms, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
    const char* sym_name = elf_strptr(elf, sh.sh_link, sym.st_name);
    if (!sym_name || std::strcmp(sym_name, name) != 0) continue;
    GElf_Versym version = 0;
    const bool hidden = versions && gelf_getversym(versions, static_cast<int>(i), &version) && (version & 0x8000);
    if (!hidden) return sym.st_value;
    hidden_match = sym.st_value;
  }
  return hidden_match;
}

}  // namespace

std::vector<RemoteMapping> remote_mappings(pid_t pid) {
  std::vector<RemoteMapping> out;
  auto text = proc::read_file("/proc/" + std::to_string(pid) + "/maps", 64 << 20);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, name;
    if (!(fields >> range >> perms >> offset >> dev >> inode)) continue;
    std::getline(fields, name);
    name.erase(0, name.find_first_not_of(' '));
    const size_t dash = range.find('-');
    out.push_back({std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16),
                   std::stoull(offset, nullptr, 16), name});
  }
  return out;
}

std::string path_in_process(pid_t pid, const std::string& path) {
  return "/proc/" + std::to_string(pid) + "/root" + path;
}

std::optional<RemoteModule> find_remote_module(pid_t pid, const std::function<bool(const std::string&)>& wanted) {
  for (const auto& m : remote_mappings(pid)) {
    if (m.offset != 0 || m.name.empty() || m.name[0] != '/' || !wanted(file_name(m.name))) continue;
    ElfFile file(path_in_process(pid, m.name));
    auto first = file.load_segment_holding(0);  // the segment mapped at the module's start
    if (!first) continue;
    return RemoteModule{m.name, m.start - (first->p_vaddr & ~uint64_t{0xfff})};
  }
  return std::nullopt;
}

std::optional<uint64_t> remote_symbol(pid_t pid, const RemoteModule& module, const char* name) {
  ElfFile file(path_in_process(pid, module.path));
  if (!file.get()) return std::nullopt;
  auto value = dynamic_symbol(file.get(), name);
  if (!value) return std::nullopt;
  return module.bias + *value;
}

}  // namespace periscope::viewer
