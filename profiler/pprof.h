// pprof's profile.proto (github.com/google/pprof/proto/profile.proto), gzipped, as `go tool pprof`
// and continuous-profiling servers read it.
//
// Written by hand (a few varints and length-delimited fields) rather than with libprotobuf: the
// agent will serve this from inside other people's processes (/debug/pprof/profile), and a second
// copy of libprotobuf in a host that has its own is a known source of descriptor clashes.
#pragma once

#include <string>

#include "profiler/profile.h"

namespace periscope {

std::string to_pprof(const Profile& profile);     // the serialized Profile message
std::string gzip(const std::string& data);         // RFC 1952, what pprof expects in .pb.gz
std::string to_pprof_gz(const Profile& profile);

}  // namespace periscope
