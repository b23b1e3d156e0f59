// The interactive flame graph: one self-contained HTML file (no network, no external script):
// click a frame to zoom, reset; search by regular expression with the matched share shown;
// reverse (bottom-up, callees at the root) and icicle (root at the top) views; one thread or all.
// "#search=REGEX" in the URL searches on load.
#pragma once

#include <string>

#include "profiler/profile.h"

namespace periscope {

std::string to_flamegraph_html(const Profile& profile, const std::string& title);

}  // namespace periscope
