#include "profiler/profile_readers.h"

#include <cmath>
#include <fstream>
#include <cctype>
#include <cerrno>
#include <limits>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <zlib.h>

namespace periscope {

namespace {

constexpr size_t kMaxProfileBytes = size_t{1} << 30;
// What a gzipped profile may expand to. Real ones are a few MiB (pprof compresses ~10:1); a
// 14 MB gzip bomb used to take 14 s and 2 GiB to reach the 1 GiB bound above.
constexpr size_t kMaxInflatedBytes = size_t{128} << 20;
// Bounds on what a file may expand to (docs/fuzzing.md, "What was found"). The call tree of
// `periscope view` recurses once per frame: a 50,000-frame stack overflowed the viewer's stack.
// The agent records at most 256 frames; other profilers are in the same range.
constexpr size_t kMaxStackFrames = 4096;
// pprof and speedscope name each frame by index, so a small file can repeat a long name millions
// of times: bound the names' total size (plus a string's own size per frame).
constexpr uint64_t kMaxExpandedBytes = uint64_t{1} << 30;
// Seconds beyond any real recording (31 years): keeps seconds * 1e9 within a uint64_t for the
// pprof writer (a duration near 2^64 ns rounded up to 2^64 and overflowed the conversion).
constexpr double kMaxSeconds = 1e9;

// Frames added to a stack, within the bounds above.
class FrameBudget {
 public:
  bool add(ProfileStack* stack, const std::string& name, std::string* error) {
    if (stack->frames.size() >= kMaxStackFrames) {
      *error = "a stack deeper than " + std::to_string(kMaxStackFrames) + " frames";
      return false;
    }
    bytes_ += name.size() + sizeof(std::string);
    if (bytes_ > kMaxExpandedBytes) {
      *error = "frame names add up to more than 1 GiB";
      return false;
    }
    stack->frames.push_back(name);
    return true;
  }

 private:
  uint64_t bytes_ = 0;
};

// A count or an index from JSON: a non-negative integer, or a finite float in range (truncated);
// anything else (negative, 1e30, a string) is malformed. nlohmann's get<uint64_t>() would
// static_cast a float out of range, which is undefined behavior.
// A count is at most 2^63 - 1 in every format: pprof's values are int64, and a profile read from
// one format must be writable as any other.
constexpr uint64_t kMaxSampleCount = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

bool json_u64(const nlohmann::json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return *out <= kMaxSampleCount;
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (!(d >= 0 && d < 9223372036854775808.0)) return false;  // also false for NaN
    *out = static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

bool gunzip(const std::string& in, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char chunk[1 << 16];
  int r = Z_OK;
  while (r == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    r = inflate(&z, Z_NO_FLUSH);
    out->append(chunk, sizeof chunk - z.avail_out);
    if (out->size() > kMaxInflatedBytes) r = Z_MEM_ERROR;
  }
  inflateEnd(&z);
  return r == Z_STREAM_END;
}

// The protobuf wire format, read defensively: every length is checked against what is left.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  bool next(int* field, int* wire) {
    uint64_t key;
    if (!varint(&key)) return false;
    *field = static_cast<int>(key >> 3);
    *wire = static_cast<int>(key & 7);
    return *field > 0;
  }
  bool varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool bytes(std::string_view* out) {
    uint64_t n;
    if (!varint(&n) || n > data_.size() - pos_) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(int wire) {
    uint64_t v;
    std::string_view s;
    switch (wire) {
      case 0: return varint(&v);
      case 1: return advance(8);
      case 2: return bytes(&s);
      case 5: return advance(4);
      default: return false;
    }
  }
  // A repeated uint64 field, packed or not.
  bool uint64s(int wire, std::vector<uint64_t>* out) {
    uint64_t v;
    if (wire == 0) {
      if (!varint(&v)) return false;
      out->push_back(v);
      return true;
    }
    std::string_view packed;
    if (wire != 2 || !bytes(&packed)) return false;
    ProtoReader p(packed);
    while (!p.done()) {
      if (!p.varint(&v)) return false;
      out->push_back(v);
    }
    return true;
  }

 private:
  bool advance(size_t n) {
    if (n > data_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  std::string_view data_;
  size_t pos_ = 0;
};

struct PprofSample {
  std::vector<uint64_t> locations;
  std::vector<uint64_t> values;
  std::vector<std::pair<uint64_t, uint64_t>> labels;  // key, str
};

bool parse_pprof(const std::string& raw, Profile* out, std::string* error) {
  std::vector<std::string> strings;
  std::map<uint64_t, uint64_t> function_name;               // id -> string index
  std::map<uint64_t, std::vector<uint64_t>> location_funcs;  // id -> function ids, innermost first
  std::vector<PprofSample> samples;
  std::vector<std::pair<uint64_t, uint64_t>> sample_types;
  uint64_t period = 0, duration = 0, default_type = 0;
  ProtoReader r(raw);
  int field, wire;
  auto fail = [&](const char* what) {
    *error = std::string("malformed pprof profile: ") + what;
    return false;
  };
  while (!r.done()) {
    if (!r.next(&field, &wire)) return fail("bad field key");
    std::string_view m;
    if (wire == 2 && field != 6 && (field == 1 || field == 2 || field == 4 || field == 5)) {
      if (!r.bytes(&m)) return fail("truncated message");
      ProtoReader sub(m);
      int f, w;
      if (field == 1) {  // sample_type
        uint64_t type = 0, unit = 0, v;
        while (!sub.done()) {
          if (!sub.next(&f, &w)) return fail("bad value type");
          if (w == 0 && sub.varint(&v)) (f == 1 ? type : unit) = v;
          else if (!sub.skip(w)) return fail("bad value type");
        }
        sample_types.push_back({type, unit});
      } else if (field == 2) {  // sample
        PprofSample s;
        while (!sub.done()) {
          if (!sub.next(&f, &w)) return fail("bad sample");
          bool ok = f == 1 ? sub.uint64s(w, &s.locations) : f == 2 ? sub.uint64s(w, &s.values) : true;
          if (f == 3) {
            std::string_view lm;
            if (!sub.bytes(&lm)) return fail("bad label");
            ProtoReader lr(lm);
            uint64_t key = 0, str = 0, v;
            int lf, lw;
            while (!lr.done()) {
              if (!lr.next(&lf, &lw)) return fail("bad label");
              if (lw == 0 && lr.varint(&v)) {
                if (lf == 1) key = v;
                if (lf == 2) str = v;
              } else if (!lr.skip(lw)) {
                return fail("bad label");
              }
            }
            s.labels.push_back({key, str});
          } else if (f != 1 && f != 2) {
            ok = sub.skip(w);
          }
          if (!ok) return fail("bad sample");
        }
        samples.push_back(std::move(s));
      } else if (field == 4) {  // location
        uint64_t id = 0, v;
        std::vector<uint64_t> funcs;
        while (!sub.done()) {
          if (!sub.next(&f, &w)) return fail("bad location");
          if (f == 1 && w == 0 && sub.varint(&v)) {
            id = v;
          } else if (f == 4 && w == 2) {
            std::string_view lm;
            if (!sub.bytes(&lm)) return fail("bad line");
            ProtoReader lr(lm);
            int lf, lw;
            while (!lr.done()) {
              if (!lr.next(&lf, &lw)) return fail("bad line");
              if (lf == 1 && lw == 0 && lr.varint(&v)) funcs.push_back(v);
              else if (!lr.skip(lw)) return fail("bad line");
            }
          } else if (!sub.skip(w)) {
            return fail("bad location");
          }
        }
        location_funcs[id] = std::move(funcs);
      } else {  // function
        uint64_t id = 0, name = 0, v;
        while (!sub.done()) {
          if (!sub.next(&f, &w)) return fail("bad function");
          if (w == 0 && sub.varint(&v)) {
            if (f == 1) id = v;
            if (f == 2) name = v;
          } else if (!sub.skip(w)) {
            return fail("bad function");
          }
        }
        function_name[id] = name;
      }
    } else if (field == 6 && wire == 2) {
      if (!r.bytes(&m)) return fail("truncated string");
      strings.emplace_back(m);
    } else if ((field == 10 || field == 12 || field == 14) && wire == 0) {
      if (!r.varint(field == 10 ? &duration : field == 12 ? &period : &default_type)) return fail("truncated number");
    } else if (!r.skip(wire)) {
      return fail("unreadable field");
    }
  }
  static const std::string kUnknown = "?";
  auto str = [&](uint64_t i) -> const std::string& { return i < strings.size() ? strings[i] : kUnknown; };
  if (static_cast<double>(duration) / 1e9 > kMaxSeconds) return fail("duration out of range");
  FrameBudget budget;
  out->mode = sample_types.size() > 1 ? str(sample_types[1].first) : "cpu";
  out->hz = period ? static_cast<int>(1000000000ull / period) : 0;
  out->seconds = static_cast<double>(duration) / 1e9;
  out->clock = "pprof";
  // A heap profile (Go's, or ours): the value its default_sample_type names (else inuse_space), in
  // bytes or objects; a delta's negative values (freed) count as none.
  size_t value_index = 0;
  bool heap = false;
  for (const auto& [type, unit] : sample_types) heap |= str(type) == "inuse_space";
  for (size_t i = 0; heap && i < sample_types.size(); ++i) {
    const std::string& type = str(sample_types[i].first);
    if ((default_type != 0 && type == str(default_type)) || (default_type == 0 && type == "inuse_space")) value_index = i;
  }
  if (heap) {
    out->mode = "heap";
    out->hz = 0;
    out->unit = str(sample_types[value_index].second) == "bytes" ? "bytes" : "objects";
    out->clock = str(sample_types[value_index].first);
  }
  for (const auto& s : samples) {
    ProfileStack stack;
    stack.count = s.values.size() <= value_index ? (s.values.empty() ? 1 : 0) : s.values[value_index];
    if (heap && stack.count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) stack.count = 0;
    if (heap && stack.count == 0) continue;  // nothing of this value here (all freed, or none in the delta)
    // profile.proto's values are int64: a negative count arrives as 2^64 minus it.
    if (stack.count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return fail("a sample has a negative count");
    if (out->samples + stack.count < out->samples) return fail("the sample counts do not fit in 64 bits");
    for (const auto& [key, value] : s.labels) {
      if (str(key) == "thread") stack.thread = str(value);
      if (str(key) == "request") stack.request = str(value);
    }
    for (auto loc = s.locations.rbegin(); loc != s.locations.rend(); ++loc) {  // root first
      const auto& funcs = location_funcs[*loc];
      for (auto f = funcs.rbegin(); f != funcs.rend(); ++f) {
        std::string why;
        if (!budget.add(&stack, str(function_name[*f]), &why)) return fail(why.c_str());
      }
    }
    out->samples += stack.count;
    out->stacks.push_back(std::move(stack));
  }
  return true;
}

bool parse_folded(const std::string& text, Profile* out, std::string* error) {
  out->mode = "cpu";
  out->clock = "folded";
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    auto space = line.rfind(' ');
    char* end = nullptr;
    // strtoull takes "-4" as 2^64 - 4: the count must be digits only, and fit.
    if (space == std::string::npos) {
      *error = "line " + std::to_string(n) + " is not 'frame;frame;... COUNT'";
      return false;
    }
    const char sign = line[space + 1];
    if (sign == '-' || sign == '+') {
      *error = "line " + std::to_string(n) + ": the count '" + line.substr(space + 1, 20) +
               "' is not a number of samples (0 or more)";
      return false;
    }
    errno = 0;
    uint64_t count = std::isdigit(static_cast<unsigned char>(sign)) ? std::strtoull(&line[space + 1], &end, 10) : 0;
    if (end == nullptr || *end != '\0') {
      *error = "line " + std::to_string(n) + " is not 'frame;frame;... COUNT'";
      return false;
    }
    if (errno == ERANGE || out->samples + count < out->samples) {
      *error = "line " + std::to_string(n) + ": the sample count does not fit in 64 bits";
      return false;
    }
    if (count > kMaxSampleCount) {
      *error = "line " + std::to_string(n) + ": the sample count is over 2^63-1 (pprof's int64 limit)";
      return false;
    }
    ProfileStack s;
    s.count = count;
    std::string stack = line.substr(0, space);
    for (size_t pos = 0; pos <= stack.size();) {
      size_t semi = stack.find(';', pos);
      if (semi == std::string::npos) semi = stack.size();
      if (s.frames.size() >= kMaxStackFrames) {
        *error = "line " + std::to_string(n) + ": a stack deeper than " + std::to_string(kMaxStackFrames) + " frames";
        return false;
      }
      s.frames.push_back(stack.substr(pos, semi - pos));
      pos = semi + 1;
    }
    out->samples += count;
    out->stacks.push_back(std::move(s));
  }
  return true;
}

bool parse_speedscope(const std::string& text, Profile* out, std::string* error) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("shared") || !doc.contains("profiles")) {
    *error = "not a speedscope file (JSON with \"shared\" and \"profiles\")";
    return false;
  }
  try {
    const auto& frames = doc["shared"].at("frames");
    out->mode = "cpu";
    out->clock = "speedscope";
    FrameBudget budget;
    for (const auto& p : doc["profiles"]) {
      if (p.value("type", "") != "sampled") continue;
      const auto& samples = p.at("samples");
      const auto& weights = p.at("weights");
      for (size_t i = 0; i < samples.size() && i < weights.size(); ++i) {
        ProfileStack s;
        s.thread = p.value("name", "");
        if (!json_u64(weights[i], &s.count)) {
          *error = "malformed speedscope file: weight " + std::to_string(i) + " is not a count (a number from 0 to 2^63-1)";
          return false;
        }
        for (const auto& index : samples[i]) {
          uint64_t at = 0;
          if (!json_u64(index, &at) || at >= frames.size()) {
            *error = "malformed speedscope file: a frame index in sample " + std::to_string(i) + " is out of range";
            return false;
          }
          std::string why;
          if (!budget.add(&s, frames.at(static_cast<size_t>(at)).at("name").get<std::string>(), &why)) {
            *error = "speedscope file too large: " + why;
            return false;
          }
        }
        if (out->samples + s.count < out->samples) {
          *error = "malformed speedscope file: the weights do not fit in 64 bits";
          return false;
        }
        out->samples += s.count;
        out->stacks.push_back(std::move(s));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("malformed speedscope file: ") + e.what();
    return false;
  }
  return true;
}

// The numbers profile_from_json() reads, checked: an empty string when they are all in range.
std::string check_profile_numbers(const nlohmann::json& j) {
  if (!j.is_object()) return "not a JSON object";
  uint64_t u;
  if (auto hz = j.find("hz"); hz != j.end() && hz->is_number()) {
    bool in_range = hz->is_number_unsigned() ? hz->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                    : hz->is_number_integer() ? hz->get<int64_t>() >= std::numeric_limits<int>::min() &&
                                                    hz->get<int64_t>() <= std::numeric_limits<int>::max()
                                              : std::isfinite(hz->get<double>()) &&
                                                    std::fabs(hz->get<double>()) < 2147483647.0;
    if (!in_range) return "\"hz\" out of range";
  }
  for (const char* key : {"samples", "lost", "threads"}) {
    if (auto v = j.find(key); v != j.end() && v->is_number() && !json_u64(*v, &u)) {
      return std::string("\"") + key + "\" is not a count (a number from 0 to 2^63-1)";
    }
  }
  if (auto v = j.find("seconds"); v != j.end() && v->is_number()) {
    double d = v->get<double>();
    if (!(d >= 0 && d <= kMaxSeconds)) return "\"seconds\" out of range";
  }
  if (auto stacks = j.find("stacks"); stacks != j.end() && stacks->is_array()) {
    for (const auto& s : *stacks) {
      if (!s.is_object()) continue;
      if (auto c = s.find("count"); c != s.end() && c->is_number() && !json_u64(*c, &u)) {
        return "a stack's \"count\" is out of range (0 to 2^64)";
      }
      if (auto f = s.find("frames"); f != s.end() && f->is_array() && f->size() > kMaxStackFrames) {
        return "a stack deeper than " + std::to_string(kMaxStackFrames) + " frames";
      }
    }
  }
  return {};
}

// Our HTML flame graph carries its profile as `const PROFILE = {...};` (with "</" escaped).
bool parse_flamegraph_html(const std::string& html, Profile* out, std::string* error) {
  const std::string marker = "const PROFILE = ";
  auto start = html.find(marker);
  auto end = start == std::string::npos ? start : html.find(";\n", start);
  if (end == std::string::npos) {
    *error = "an HTML file without a periscope profile in it";
    return false;
  }
  std::string json = html.substr(start + marker.size(), end - start - marker.size());
  for (size_t pos = 0; (pos = json.find("<\\/", pos)) != std::string::npos;) json.replace(pos, 3, "</");
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded()) {
    *error = "the profile in this HTML file is not valid JSON";
    return false;
  }
  // profile_from_json converts with get<int>/get<uint64_t>, which is undefined behavior for a
  // float out of range (e.g. "hz": 1e20): check every number first.
  if (std::string why = check_profile_numbers(parsed); !why.empty()) {
    *error = "malformed profile in HTML: " + why;
    return false;
  }
  try {
    *out = profile_from_json(parsed);
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("malformed profile in HTML: ") + e.what();
    return false;
  }
  return true;
}

// Reads `data` as a format told by its first bytes; when that fails, as collapsed stacks, whose
// lines may start with anything (a frame or a thread named "{lambda()#1}" or "<pool>"), before
// giving the first format's error.
template <typename Parse>
bool parse_or_folded(const std::string& data, Profile* out, std::string* error, Parse parse) {
  if (parse(data, out, error)) return true;
  std::string first_error = *error;
  *out = Profile{};
  if (parse_folded(data, out, error)) {
    error->clear();
    return true;
  }
  *out = Profile{};
  *error = first_error;
  return false;
}

}  // namespace

bool parse_profile(const std::string& data, Profile* out, std::string* error) {
  *out = Profile{};
  if (data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f && static_cast<uint8_t>(data[1]) == 0x8b) {
    return parse_or_folded(data, out, error, [](const std::string& d, Profile* p, std::string* e) {
      std::string raw;
      if (!gunzip(d, &raw)) {
        *e = "gzip data is corrupt or expands beyond " + std::to_string(kMaxInflatedBytes >> 20) + " MiB";
        return false;
      }
      return parse_pprof(raw, p, e);
    });
  }
  // An uncompressed pprof Profile starts with field 1 (sample_type), key byte 0x0a: '\n', which
  // the whitespace skip below used to swallow (so such files were read as folded and refused).
  if (!data.empty() && data[0] == 0x0a) return parse_or_folded(data, out, error, parse_pprof);
  size_t first = data.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && data[first] == '{') return parse_or_folded(data, out, error, parse_speedscope);
  if (first != std::string::npos && data[first] == '<') {
    return parse_or_folded(data, out, error, parse_flamegraph_html);
  }
  return parse_folded(data, out, error);
}

bool read_profile_file(const std::string& path, Profile* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  // A file over the bound is refused by its size; one of unknown size (a pipe, /dev/zero) is
  // read to one chunk past the bound at most.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxProfileBytes) {
    *error = path + " is larger than 1 GiB";
    return false;
  }
  std::string data;
  char chunk[1 << 16];
  while (data.size() <= kMaxProfileBytes && in.read(chunk, sizeof chunk).gcount() > 0) {
    data.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (data.size() > kMaxProfileBytes) {
    *error = path + " is larger than 1 GiB";
    return false;
  }
  if (!parse_profile(data, out, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

}  // namespace periscope
