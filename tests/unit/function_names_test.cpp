#include "profiler/function_names.h"

#include <gtest/gtest.h>

namespace periscope {
namespace {

TEST(ShortFunctionName, DropsParametersAndCollapsesTemplates) {
  EXPECT_EQ(short_function_name("ns::Foo<std::vector<int, std::allocator<int> > >::bar(int) const"),
            "ns::Foo<…>::bar");
  EXPECT_EQ(short_function_name("(anonymous namespace)::spin_inner()"), "(anonymous namespace)::spin_inner");
  EXPECT_EQ(short_function_name("main"), "main");
  EXPECT_EQ(short_function_name("pthread_cond_wait@@GLIBC_2.3.2"), "pthread_cond_wait@@GLIBC_2.3.2");
}

TEST(ShortFunctionName, KeepsOperatorsAndLambdas) {
  EXPECT_EQ(short_function_name("Foo::operator()(int)"), "Foo::operator()");
  EXPECT_EQ(short_function_name("operator<<(std::ostream&, X const&)"), "operator<<");
  EXPECT_EQ(short_function_name("operator<(A const&, A const&)"), "operator<");
  EXPECT_EQ(short_function_name("W::W(int)::{lambda()#1}::operator()() const"), "W::W::{lambda()#1}::operator()");
}

TEST(ShortFunctionName, UnbalancedNamesAreLeftAlone) {
  EXPECT_EQ(short_function_name("broken<name("), "broken<name(");
}

}  // namespace
}  // namespace periscope
