#include "profiler/pprof.h"

#include "profiler/proto_writer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <zlib.h>

namespace periscope {

using proto::ProtoWriter;
using proto::StringTable;
using proto::value_type;

std::string to_pprof(const Profile& p) {
  ProtoWriter profile;
  StringTable strings;
  const char* kind = p.mode == "wall" ? "wall" : "cpu";
  const uint64_t period_ns = p.hz > 0 ? 1000000000ull / static_cast<uint64_t>(p.hz) : 0;
  profile.field_bytes(1, value_type(strings, "samples", "count"));       // sample_type
  profile.field_bytes(1, value_type(strings, kind, "nanoseconds"));

  // One function and one location per distinct frame name (ids start at 1).
  proto::FrameTable frames;
  for (const auto& s : p.stacks) frames.add(s.frames);
  const int64_t thread_key = strings.index("thread");
  const int64_t request_key = strings.index("request");
  for (const auto& s : p.stacks) {
    ProtoWriter sample;
    sample.field_packed(1, frames.locations(s.frames));
    sample.field_packed(2, {s.count, s.count * period_ns});
    auto add_label = [&](int64_t key, const std::string& value) {
      ProtoWriter label;
      label.field_varint(1, static_cast<uint64_t>(key));
      label.field_varint(2, static_cast<uint64_t>(strings.index(value)));
      sample.field_bytes(3, label.bytes());
    };
    add_label(thread_key, s.thread);
    if (!s.request.empty()) add_label(request_key, s.request);  // go tool pprof -tagfocus request=NAME
    profile.field_bytes(2, sample.bytes());
  }
  frames.write(profile, strings);
  std::vector<uint64_t> comments{static_cast<uint64_t>(
      strings.index("periscope: " + p.clock + ", " + std::to_string(p.lost) + " samples lost"))};
  if (auto costs = describe_costs(p); !costs.empty()) {
    comments.push_back(static_cast<uint64_t>(strings.index("periscope sampling: " + costs)));
  }
  for (const auto& s : strings.strings()) profile.field_bytes(6, s);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto duration_ns = static_cast<uint64_t>(p.seconds * 1e9);
  profile.field_varint(9, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()) -
                              duration_ns);                                            // time_nanos
  profile.field_varint(10, duration_ns);                                               // duration_nanos
  profile.field_bytes(11, value_type(strings, kind, "nanoseconds"));                  // period_type
  profile.field_varint(12, period_ns);                                                // period
  profile.field_packed(13, comments);                                                  // comment
  return profile.bytes();
}

std::string gzip(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int r = deflate(&z, Z_FINISH);
  deflateEnd(&z);
  if (r != Z_STREAM_END) throw std::runtime_error("zlib: deflate failed");
  out.resize(z.total_out);
  return out;
}

std::string to_pprof_gz(const Profile& profile) { return gzip(to_pprof(profile)); }

}  // namespace periscope
