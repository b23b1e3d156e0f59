// Writing a Profile in the format a file name asks for: the interactive flame graph (.html),
// collapsed stacks (.folded), speedscope's JSON (.speedscope.json), pprof (.pb.gz).
#pragma once

#include <string>

#include "profiler/profile.h"

namespace periscope {

// The format for `path`, or an empty string with *error set (unknown or not yet supported).
std::string profile_format_for(const std::string& path, std::string* error);
// The file's content in `format`, with the root frames `roots` asks for (pprof and HTML carry
// threads and requests as labels and menus instead).
std::string render_profile(const Profile& profile, const std::string& format, RootFrames roots);

// With roots.thread, one speedscope profile per thread.
std::string to_speedscope(const Profile& profile, RootFrames roots);

}  // namespace periscope
