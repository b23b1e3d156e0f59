// Reading profiles back from files: collapsed stacks (.folded), speedscope JSON, pprof (.pb.gz,
// gzipped or not), and our own HTML flame graphs (the profile they embed): what `periscope view` shows and converts. The format is told by the
// content (gzip or protobuf, JSON, text), not trusted from the name.
#pragma once

#include <string>

#include "profiler/profile.h"

namespace periscope {

// false with *error set (one line: what is wrong and where) when `data` is not a profile we read.
bool parse_profile(const std::string& data, Profile* out, std::string* error);
bool read_profile_file(const std::string& path, Profile* out, std::string* error);

}  // namespace periscope
