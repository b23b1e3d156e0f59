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

}  // namespace periscope::proto
