// Options from the environment, and the options as the `info` command shows them.
#pragma once

#include <nlohmann/json.hpp>

#include "periscope/periscope.h"

namespace periscope::agent {

nlohmann::json describe_options(const Options& options, const std::string& socket_dir);

}  // namespace periscope::agent
