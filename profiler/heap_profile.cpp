#include "profiler/heap_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "profiler/pprof.h"
#include "profiler/profile_symbolize.h"
#include "profiler/proto_writer.h"

namespace periscope {

namespace {

constexpr const char* kValueNames[] = {"inuse_space", "inuse_objects", "alloc_space", "alloc_objects"};

double value_of(const HeapStack& s, HeapValue v) {
  switch (v) {
    case HeapValue::kInuseSpace: return s.inuse_bytes;
    case HeapValue::kInuseObjects: return s.inuse_objects;
    case HeapValue::kAllocSpace: return s.alloc_bytes;
    case HeapValue::kAllocObjects: return s.alloc_objects;
  }
  return 0;
}

int64_t rounded(double v) { return static_cast<int64_t>(std::llround(v)); }

// The key a stack is matched by across two profiles.
std::string stack_key(const HeapStack& s) {
  std::string key;
  if (!s.pcs.empty()) {
    for (uint64_t pc : s.pcs) key += std::to_string(pc) + ",";
  } else {
    for (const auto& f : s.frames) key += f + "\n";
  }
  return key;
}

}  // namespace

bool heap_value_from_name(const std::string& name, HeapValue* value) {
  for (int i = 0; i < 4; ++i) {
    if (name == kValueNames[i]) {
      *value = static_cast<HeapValue>(i);
      return true;
    }
  }
  return false;
}

const char* heap_value_name(HeapValue value) { return kValueNames[static_cast<int>(value)]; }

nlohmann::json heap_profile_to_json(const HeapProfile& p) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : p.stacks) {
    nlohmann::json j = {{"alloc_objects", s.alloc_objects}, {"alloc_bytes", s.alloc_bytes},
                        {"inuse_objects", s.inuse_objects}, {"inuse_bytes", s.inuse_bytes}};
    if (s.frames.empty()) j["pcs"] = s.pcs;
    else j["frames"] = s.frames;
    stacks.push_back(std::move(j));
  }
  return {{"rate", p.rate},       {"seconds", p.seconds},   {"delta", p.delta}, {"on", p.on},
          {"samples", p.samples}, {"dropped", p.dropped}, {"stacks", std::move(stacks)}};
}

HeapProfile heap_profile_from_json(const nlohmann::json& j) {
  HeapProfile p;
  p.rate = j.at("rate").get<uint64_t>();
  p.seconds = j.value("seconds", 0.0);
  p.delta = j.value("delta", false);
  p.on = j.value("on", false);
  p.samples = j.value("samples", uint64_t{0});
  p.dropped = j.value("dropped", uint64_t{0});
  for (const auto& s : j.at("stacks")) {
    HeapStack h;
    if (s.contains("pcs")) h.pcs = s.at("pcs").get<std::vector<uint64_t>>();
    if (s.contains("frames")) h.frames = s.at("frames").get<std::vector<std::string>>();
    h.alloc_objects = s.at("alloc_objects").get<double>();
    h.alloc_bytes = s.at("alloc_bytes").get<double>();
    h.inuse_objects = s.at("inuse_objects").get<double>();
    h.inuse_bytes = s.at("inuse_bytes").get<double>();
    p.stacks.push_back(std::move(h));
  }
  return p;
}

void name_heap_stacks(HeapProfile& p, Symbolizer& symbolizer) {
  for (auto& s : p.stacks) {
    if (s.frames.empty()) s.frames = profile_frame_names(s.pcs, symbolizer);
    if (s.frames.empty()) s.frames = {"[unknown]"};
  }
}

HeapProfile heap_delta(const HeapProfile& before, const HeapProfile& after) {
  HeapProfile d = after;
  d.delta = true;
  d.seconds = after.seconds - before.seconds;
  d.samples = after.samples >= before.samples ? after.samples - before.samples : 0;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < d.stacks.size(); ++i) index.emplace(stack_key(d.stacks[i]), i);
  for (const auto& s : before.stacks) {
    auto [it, added] = index.emplace(stack_key(s), d.stacks.size());
    if (added) {
      HeapStack gone = s;
      gone.alloc_objects = gone.alloc_bytes = gone.inuse_objects = gone.inuse_bytes = 0;
      d.stacks.push_back(std::move(gone));
    }
    HeapStack& t = d.stacks[it->second];
    t.alloc_objects -= s.alloc_objects;
    t.alloc_bytes -= s.alloc_bytes;
    t.inuse_objects -= s.inuse_objects;
    t.inuse_bytes -= s.inuse_bytes;
  }
  return d;
}

Profile heap_as_profile(const HeapProfile& h, HeapValue value) {
  Profile p;
  p.mode = "heap";
  p.unit = value == HeapValue::kInuseSpace || value == HeapValue::kAllocSpace ? "bytes" : "objects";
  char clock[160];
  std::snprintf(clock, sizeof clock, "%s%s, allocations sampled every %s on average", h.delta ? "change in " : "",
                heap_value_name(value), human_bytes(static_cast<double>(h.rate)).c_str());
  p.clock = clock;
  p.seconds = h.seconds;
  p.lost = h.dropped;
  for (const auto& s : h.stacks) {
    const int64_t v = rounded(value_of(s, value));
    if (v <= 0) continue;
    ProfileStack ps;
    ps.frames = s.frames;
    ps.count = static_cast<uint64_t>(v);
    p.samples += ps.count;
    p.stacks.push_back(std::move(ps));
  }
  return p;
}

std::string heap_to_pprof_gz(const HeapProfile& h, HeapValue default_value) {
  using proto::ProtoWriter;
  proto::StringTable strings;
  ProtoWriter profile;
  const char* units[] = {"bytes", "count", "bytes", "count"};
  // Go's order: alloc_objects, alloc_space, inuse_objects, inuse_space.
  const HeapValue order[] = {HeapValue::kAllocObjects, HeapValue::kAllocSpace, HeapValue::kInuseObjects,
                             HeapValue::kInuseSpace};
  for (HeapValue v : order) {
    profile.field_bytes(1, proto::value_type(strings, heap_value_name(v), units[static_cast<int>(v)]));
  }
  proto::FrameTable frames;
  for (const auto& s : h.stacks) frames.add(s.frames);
  for (const auto& s : h.stacks) {
    ProtoWriter sample;
    sample.field_packed(1, frames.locations(s.frames));
    std::vector<uint64_t> values;
    for (HeapValue v : order) values.push_back(static_cast<uint64_t>(rounded(value_of(s, v))));  // int64 on the wire
    sample.field_packed(2, values);
    profile.field_bytes(2, sample.bytes());
  }
  frames.write(profile, strings);
  const uint64_t comment = static_cast<uint64_t>(strings.index(
      "periscope heap: " + std::to_string(h.samples) + " allocations sampled, " + std::to_string(h.dropped) +
      " not kept" + (h.delta ? ", a delta over " + std::to_string(std::lround(h.seconds)) + " s" : "")));
  const uint64_t default_type = static_cast<uint64_t>(strings.index(heap_value_name(default_value)));
  const std::string period_type = proto::value_type(strings, "space", "bytes");
  for (const auto& s : strings.strings()) profile.field_bytes(6, s);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  profile.field_varint(9, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
  if (h.delta && h.seconds > 0) profile.field_varint(10, static_cast<uint64_t>(h.seconds * 1e9));
  profile.field_bytes(11, period_type);
  profile.field_varint(12, h.rate);
  profile.field_packed(13, {comment});
  profile.field_varint(14, default_type);
  return gzip(profile.bytes());
}

std::string render_heap_top(const HeapProfile& h, HeapValue value, size_t rows) {
  const bool bytes = value == HeapValue::kInuseSpace || value == HeapValue::kAllocSpace;
  auto amount = [&](double v) {
    if (bytes) return human_bytes(v);
    char text[32];
    std::snprintf(text, sizeof text, "%.0f", v);
    return std::string(text);
  };
  std::map<std::string, std::pair<double, double>> by_function;  // flat, cumulative
  double total = 0;
  for (const auto& s : h.stacks) {
    const double v = value_of(s, value);
    total += v;
    if (s.frames.empty()) continue;
    by_function[s.frames.back()].first += v;
    std::map<std::string, bool> seen;
    for (const auto& f : s.frames) {
      if (seen.emplace(f, true).second) by_function[f].second += v;
    }
  }
  std::vector<std::pair<std::string, std::pair<double, double>>> sorted(by_function.begin(), by_function.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second.first != b.second.first) return a.second.first > b.second.first;
    return a.second.second > b.second.second;
  });
  std::string out = std::string(h.delta ? "change in " : "") + heap_value_name(value) + ": " + amount(total) +
                    (h.delta ? " over " + std::to_string(std::lround(h.seconds)) + " s" : "") +
                    " (estimated from " + std::to_string(h.samples) + " sampled allocations, one every " +
                    human_bytes(static_cast<double>(h.rate)) + " on average)\n";
  char line[512];
  std::snprintf(line, sizeof line, "%12s %7s %12s %7s  %s\n", "FLAT", "FLAT%", "CUM", "CUM%", "FUNCTION");
  out += line;
  const double denominator = std::fabs(total) > 0 ? std::fabs(total) : 1;
  size_t shown = 0;
  for (const auto& [name, v] : sorted) {
    if (shown++ >= rows) break;
    if (v.first == 0 && v.second == 0) continue;
    std::snprintf(line, sizeof line, "%12s %6.1f%% %12s %6.1f%%  %s\n", amount(v.first).c_str(),
                  100 * v.first / denominator, amount(v.second).c_str(), 100 * v.second / denominator, name.c_str());
    out += line;
  }
  return out;
}


}  // namespace periscope
