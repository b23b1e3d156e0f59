// A profile's stacks from addresses to the names every output shows. The agent sends addresses
// (`profile dump --raw`) and the viewer names them from the same files, so the host keeps none of
// the debug information; where the viewer cannot read the process's modules, the agent does it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiler/profile.h"
#include "profiler/symbolizer.h"

namespace periscope {

// Names of one sampled stack, root first: `pcs` innermost first (pcs[0] the interrupted pc, the
// rest return addresses), a 0 marking where the stack was cut.
std::vector<std::string> profile_frame_names(const std::vector<uint64_t>& pcs, Symbolizer& symbolizer);

// `profile dump --raw` data (a profile whose stacks carry "pcs" instead of "frames") into a
// Profile, named by `symbolizer`. Throws on malformed input.
Profile profile_from_raw_json(const nlohmann::json& json, Symbolizer& symbolizer);

}  // namespace periscope
