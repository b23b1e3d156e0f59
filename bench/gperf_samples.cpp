// Counts the samples in a gperftools (libprofiler) CPU profile: the legacy binary format, a
// header of 5 words, then records of (count, n, n pcs) words until the (0, 1, 0) trailer.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gperf_samples PROFILE\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint64_t> words;
  for (uint64_t w; in.read(reinterpret_cast<char*>(&w), sizeof w);) words.push_back(w);
  uint64_t samples = 0;
  for (size_t i = 5; i + 1 < words.size();) {
    uint64_t count = words[i], n = words[i + 1];
    if (count == 0 && n == 1) break;  // trailer
    samples += count;
    i += 2 + n;
  }
  std::printf("%llu\n", static_cast<unsigned long long>(samples));
  return 0;
}
