// The symbolizer on addresses whose answer we know: a function of this file (name, file, line), an
// inlined call (a frame of its own, then its caller), libc, the kernel's vDSO, and addresses in no
// module — in this process and, as the viewer does, in another one (a fork child of the same image).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <dlfcn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "profiler/symbolizer.h"

namespace periscope {
namespace {

__attribute__((noinline)) uint64_t return_address_here() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

__attribute__((always_inline)) inline uint64_t inlined_caller() {
  return return_address_here();  // this call's return address lies in inlined code
}

__attribute__((noinline)) uint64_t outer_of_the_inlined() {
  uint64_t pc = inlined_caller();
  asm volatile("" ::: "memory");  // keep this frame a frame of its own
  return pc;
}

__attribute__((noinline)) int known_function(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}

uint64_t vdso_clock_gettime() {
  void* vdso = ::dlopen("linux-vdso.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!vdso) return 0;
  void* f = ::dlsym(vdso, "__vdso_clock_gettime");
  return reinterpret_cast<uint64_t>(f);
}

TEST(Symbolizer, NamesAFunctionOfThisFileWithItsFileAndLine) {
  Symbolizer s(::getpid());
  ASSERT_EQ(s.error(), "");
  auto frames = s.symbolize(reinterpret_cast<uint64_t>(&known_function), false);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.back().function.find("known_function"), std::string::npos) << describe_frame(frames.back());
  EXPECT_NE(frames.back().file.find("symbolizer_test.cpp"), std::string::npos) << describe_frame(frames.back());
  EXPECT_GT(frames.back().line, 0);
  EXPECT_NE(frames.back().module.find("unit_tests"), std::string::npos) << frames.back().module;
}

TEST(Symbolizer, AnInlinedCallIsAFrameOfItsOwnBeforeItsCaller) {
  Symbolizer s(::getpid());
  auto frames = s.symbolize(outer_of_the_inlined(), true);
  ASSERT_GE(frames.size(), 2u) << (frames.empty() ? "" : describe_frame(frames[0]));
  EXPECT_TRUE(frames[0].inlined);
  EXPECT_NE(frames[0].function.find("inlined_caller"), std::string::npos) << describe_frame(frames[0]);
  EXPECT_FALSE(frames[1].inlined);
  EXPECT_NE(frames[1].function.find("outer_of_the_inlined"), std::string::npos) << describe_frame(frames[1]);
  EXPECT_NE(frames[1].file.find("symbolizer_test.cpp"), std::string::npos) << "the call site of the inlined call";
}

TEST(Symbolizer, NamesLibcFunctions) {
  Symbolizer s(::getpid());
  auto frames = s.symbolize(reinterpret_cast<uint64_t>(&::getppid), false);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().module, "libc.so.6");
  EXPECT_NE(frames.back().function.find("getppid"), std::string::npos) << describe_frame(frames.back());
}

TEST(Symbolizer, NamesVdsoFunctionsLikePerf) {
  const uint64_t pc = vdso_clock_gettime();
  if (pc == 0) GTEST_SKIP() << "this kernel maps no vDSO clock_gettime";
  Symbolizer s(::getpid());
  auto frames = s.symbolize(pc, false);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().module, "[vdso]");
  EXPECT_NE(frames.back().function.find("clock_gettime"), std::string::npos) << describe_frame(frames.back());
}

// The agent's symbolizer lives on while the host loads libraries (plugins, libdw itself): an
// address outside every module then makes it read the module list again, and what it knew must
// still be named.
TEST(Symbolizer, ALibraryLoadedSinceKeepsEveryModuleNamed) {
  Symbolizer s(::getpid());
  ASSERT_EQ(s.error(), "");
  ASSERT_NE(s.symbolize(reinterpret_cast<uint64_t>(&known_function), false).back().function.find("known_function"),
            std::string::npos);
  void* library = ::dlopen(PERISCOPE_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(library, nullptr) << ::dlerror();
  (void)s.symbolize(0x10, false);  // in no module: the list is read again
  auto frames = s.symbolize(reinterpret_cast<uint64_t>(&known_function) + 1, false);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.back().function.find("known_function"), std::string::npos) << describe_frame(frames.back());
  auto in_library = s.symbolize(reinterpret_cast<uint64_t>(::dlsym(library, "plugin_spin")), false);
  ASSERT_FALSE(in_library.empty());
  EXPECT_NE(in_library.back().function.find("plugin_spin"), std::string::npos) << describe_frame(in_library.back());
  ::dlclose(library);
}

TEST(Symbolizer, AnAddressInNoModuleIsAnAddressNotACrash) {
  Symbolizer s(::getpid());
  for (uint64_t pc : {uint64_t{0}, uint64_t{0x10}, uint64_t{0xdeadbeef000}, ~uint64_t{0}}) {
    auto frames = s.symbolize(pc, true);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, "");
    EXPECT_FALSE(describe_frame(frames[0]).empty());
  }
}

// What the viewer does: another process's addresses, read through /proc/PID.
TEST(Symbolizer, NamesAnotherProcesssFunctionsAndVdso) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  {
    Symbolizer s(child);  // a fork child: the same image at the same addresses
    ASSERT_EQ(s.error(), "");
    auto frames = s.symbolize(reinterpret_cast<uint64_t>(&known_function), false);
    ASSERT_FALSE(frames.empty());
    EXPECT_NE(frames.back().function.find("known_function"), std::string::npos) << describe_frame(frames.back());
    if (const uint64_t pc = vdso_clock_gettime()) {
      auto vdso = s.symbolize(pc, false);
      ASSERT_FALSE(vdso.empty());
      EXPECT_NE(vdso.back().function.find("clock_gettime"), std::string::npos) << describe_frame(vdso.back());
    }
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace periscope
