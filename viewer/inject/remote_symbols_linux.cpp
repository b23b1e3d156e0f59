#include "viewer/inject/remote_symbols.h"

#include <cstring>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sstream>
#include <unistd.h>
#include <vector>

#include "profiler/proc_reader.h"

namespace periscope::viewer {

namespace {

struct Mapping {
  uint64_t start = 0;
  uint64_t offset = 0;
  std::string path;
};

std::vector<Mapping> read_maps(pid_t pid) {
  std::vector<Mapping> out;
  auto text = proc::read_file("/proc/" + std::to_string(pid) + "/maps", 64 << 20);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    if (!(fields >> range >> perms >> offset >> dev >> inode)) continue;
    std::getline(fields, path);
    path.erase(0, path.find_first_not_of(' '));
    if (path.empty() || path[0] != '/') continue;
    out.push_back({std::stoull(range.substr(0, range.find('-')), nullptr, 16), std::stoull(offset, nullptr, 16), path});
  }
  return out;
}

std::string file_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Closes what it opened, however the lookup ends.
class ElfFile {
 public:
  explicit ElfFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    elf_version(EV_CURRENT);
    if (fd_ >= 0) elf_ = elf_begin(fd_, ELF_C_READ, nullptr);
  }
  ~ElfFile() {
    if (elf_) elf_end(elf_);
    if (fd_ >= 0) ::close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  Elf* get() const { return elf_; }

 private:
  int fd_;
  Elf* elf_ = nullptr;
};

// The link-time address of the segment that maps file offset 0.
std::optional<uint64_t> first_segment_address(Elf* elf) {
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0) {
      return ph.p_vaddr & ~uint64_t{0xfff};
    }
  }
  return std::nullopt;
}

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

std::string path_in_process(pid_t pid, const std::string& path) {
  return "/proc/" + std::to_string(pid) + "/root" + path;
}

std::optional<RemoteModule> find_remote_module(pid_t pid, const std::function<bool(const std::string&)>& wanted) {
  for (const auto& m : read_maps(pid)) {
    if (m.offset != 0 || !wanted(file_name(m.path))) continue;
    ElfFile file(path_in_process(pid, m.path));
    if (!file.get()) continue;
    auto first = first_segment_address(file.get());
    if (!first) continue;
    return RemoteModule{m.path, m.start - *first};
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
