#include "viewer/cli_errors.h"
#include "viewer/terminal_text.h"

#include <cstdio>

namespace periscope::viewer {

// Messages may carry what another process said (its errors, its names).
void print_error(const std::string& message) { print_untrusted("periscope: " + message + "\n", stderr); }

}  // namespace periscope::viewer
