// The protobuf wire format, as much of it as profile.proto needs, and pprof's string table: shared
// by the CPU and heap pprof writers. Internal to profiler/.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace periscope::proto {

// The protobuf wire format, as much of it as profile.proto needs.
class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void field_varint(int field, uint64_t v) {
    if (v == 0) return;  // proto3: zero is the default and is not written
    varint(static_cast<uint64_t>(field) << 3);
    varint(v);
  }
  void field_bytes(int field, const std::string& bytes) {
    varint((static_cast<uint64_t>(field) << 3) | 2);
    varint(bytes.size());
    out_ += bytes;
  }
  void field_packed(int field, const std::vector<uint64_t>& values) {
    ProtoWriter packed;
    for (uint64_t v : values) packed.varint(v);
    field_bytes(field, packed.out_);
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

class StringTable {
 public:
  StringTable() { index(""); }  // string_table[0] must be ""
  int64_t index(const std::string& s) {
    auto [it, added] = ids_.emplace(s, static_cast<int64_t>(strings_.size()));
    if (added) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::map<std::string, int64_t> ids_;
  std::vector<std::string> strings_;
};

// A ValueType message: {type, unit} as string-table indices.
inline std::string value_type(StringTable& strings, const char* type, const char* unit) {
  ProtoWriter m;
  m.field_varint(1, static_cast<uint64_t>(strings.index(type)));
  m.field_varint(2, static_cast<uint64_t>(strings.index(unit)));
  return m.bytes();
}

// One Location and one Function per distinct frame name (ids from 1, function id == location id),
// as both profile writers describe their stacks' frames.
class FrameTable {
 public:
  void add(const std::vector<std::string>& frames) {
    for (const auto& f : frames) ids_.emplace(f, ids_.size() + 1);
  }
  // A sample's location ids, leaf first, for `frames` root first (all added before).
  std::vector<uint64_t> locations(const std::vector<std::string>& frames) const {
    std::vector<uint64_t> out;
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) out.push_back(ids_.at(*it));
    return out;
  }
  // The Location (field 4) and Function (field 5) messages, names into `strings`.
  void write(ProtoWriter& profile, StringTable& strings) const {
    for (const auto& [name, id] : ids_) {
      ProtoWriter line;
      line.field_varint(1, id);  // function_id == location id
      ProtoWriter location;
      location.field_varint(1, id);
      location.field_bytes(4, line.bytes());
      profile.field_bytes(4, location.bytes());
      ProtoWriter function;
      function.field_varint(1, id);
      function.field_varint(2, static_cast<uint64_t>(strings.index(name)));
      function.field_varint(3, static_cast<uint64_t>(strings.index(name)));
      profile.field_bytes(5, function.bytes());
    }
  }

 private:
  std::map<std::string, uint64_t> ids_;
};

}  // namespace periscope::proto
