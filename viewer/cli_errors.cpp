#include "viewer/cli_errors.h"

#include <cstdio>

namespace periscope::viewer {

void print_error(const std::string& message) { std::fprintf(stderr, "periscope: %s\n", message.c_str()); }

}  // namespace periscope::viewer
