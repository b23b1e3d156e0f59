// Columns padded to their widest cell, two spaces apart: the text form of most listings, in the
// agent's replies and in the viewer alike.
#pragma once

#include <string>
#include <vector>

namespace periscope::protocol {

std::string format_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace periscope::protocol
