#include "viewer/output_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unistd.h>

#include "viewer/cli_errors.h"

namespace periscope::viewer {

void write_atomically(const std::string& path, const std::string& content) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.good()) throw CliError(kExitCommandFailed, "cannot write " + temp + ": " + std::strerror(errno));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    throw CliError(kExitCommandFailed, "cannot write " + path + ": " + why);
  }
}

}  // namespace periscope::viewer
