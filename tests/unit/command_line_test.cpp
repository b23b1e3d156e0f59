#include "protocol/command_line.h"

#include <gtest/gtest.h>

namespace periscope::protocol {
namespace {

using Words = std::vector<std::string>;

TEST(SplitCommandLine, SplitsOnWhitespace) {
  EXPECT_EQ(split_command_line("  set  level\tdebug \r\n").words, (Words{"set", "level", "debug"}));
  EXPECT_TRUE(split_command_line("").words.empty());
}

TEST(SplitCommandLine, QuotesGroupAndBackslashEscapes) {
  EXPECT_EQ(split_command_line(R"(set msg "hello world" 'it''s' a\ b "q\"x")").words,
            (Words{"set", "msg", "hello world", "its", "a b", "q\"x"}));
  EXPECT_EQ(split_command_line(R"(x "")").words, (Words{"x", ""}));
}

TEST(SplitCommandLine, UnterminatedQuoteIsAnError) {
  auto p = split_command_line("set x 'oops");
  EXPECT_TRUE(p.words.empty());
  EXPECT_EQ(p.error, "unterminated single quote");
}

TEST(QuoteWord, RoundTripsThroughSplit) {
  for (std::string w : {"plain", "two words", "", "quote\"inside", "back\\slash", "tab\there", "'single'"}) {
    auto p = split_command_line("cmd " + quote_word(w));
    ASSERT_EQ(p.words.size(), 2u) << w;
    EXPECT_EQ(p.words[1], w);
  }
}

TEST(Printable, ReplacesControlBytesAndCuts) {
  EXPECT_EQ(printable(std::string("a\x01\xff", 3)), "a??");
  EXPECT_EQ(printable(std::string(100, 'x'), 10), "xxxxxxxxxx...");
}

}  // namespace
}  // namespace periscope::protocol
