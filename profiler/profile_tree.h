// A profile as a call tree for the terminal: top-down (callers above callees) or bottom-up (the
// functions that burn time at the root, their callers below), with total and self shares,
// pruned below a share.
#pragma once

#include <string>

#include "profiler/profile.h"

namespace periscope {

std::string render_tree(const Profile& profile, bool bottom_up, double min_percent);

}  // namespace periscope
