// Files the viewer writes: next to the path, then renamed, so a reader (Prometheus' file_sd, a
// browser, pprof) never sees half a file. Throws CliError (kExitCommandFailed) with the reason.
#pragma once

#include <string>

namespace periscope::viewer {

void write_atomically(const std::string& path, const std::string& content);

}  // namespace periscope::viewer
