// An allocation-heavy workload for bench/heap_cost.sh: OPS times, free one of 4096 live blocks
// and allocate another (malloc and operator new alternately; sizes 16..1040 bytes, one in 64 of
// 16..80 KiB). Prints nanoseconds per operation.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

volatile unsigned char g_sink;

__attribute__((noipa)) void* allocate(size_t size, bool with_new) {
  void* p = with_new ? static_cast<void*>(new char[size]) : std::malloc(size);
  static_cast<unsigned char*>(p)[0] = static_cast<unsigned char>(size);
  return p;
}

__attribute__((noipa)) void release(void* p, bool with_new) {
  g_sink = static_cast<unsigned char*>(p)[0];
  if (with_new) delete[] static_cast<char*>(p);
  else std::free(p);
}

}  // namespace

int main(int argc, char** argv) {
  const long ops = argc > 1 ? std::atol(argv[1]) : 10000000;
  constexpr size_t kLive = 4096;
  std::vector<void*> live(kLive, nullptr);
  unsigned seed = 42;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < ops; ++i) {
    seed = seed * 1103515245 + 12345;
    const size_t slot = (seed >> 4) % kLive;
    const bool with_new = (slot & 1) != 0;
    if (live[slot]) release(live[slot], with_new);
    const size_t size = (seed >> 20) % 64 == 0 ? 16 + (seed >> 8) % (64 * 1024) : 16 + (seed >> 8) % 1024;
    live[slot] = allocate(size, with_new);
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  for (size_t slot = 0; slot < kLive; ++slot) {
    if (live[slot]) release(live[slot], (slot & 1) != 0);
  }
  std::printf("%.2f\n", ns / static_cast<double>(ops));
  return 0;
}
