// Options from the environment, and the options as the `info` command shows them.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>

#include "periscope/periscope.h"

namespace periscope::agent {

// A PERISCOPE_* setting by name; null when unset.
using SettingLookup = std::function<const char*(const char*)>;
// The options as Options::from_env() reads them, from `lookup` instead of the environment.
Options options_from(const SettingLookup& lookup);

nlohmann::json describe_options(const Options& options, const std::string& socket_dir);

}  // namespace periscope::agent
