// An ELF file opened for reading its headers (libelf): regular files only, opened without
// blocking, since the paths come from other processes and from reports that are not to be
// trusted (a FIFO or a tty would hang the viewer). Closes what it opened.
#pragma once

#include <cstdint>
#include <gelf.h>
#include <optional>
#include <string>

namespace periscope::viewer {

class ElfFile {
 public:
  explicit ElfFile(const std::string& path);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  Elf* get() const { return elf_; }  // null when the file could not be read as ELF
  // The loadable segment whose file bytes hold `offset`.
  std::optional<GElf_Phdr> load_segment_holding(uint64_t offset) const;

 private:
  int fd_ = -1;
  Elf* elf_ = nullptr;
};

}  // namespace periscope::viewer
