#include "viewer/terminal_text.h"

#include <gtest/gtest.h>

namespace periscope::viewer {
namespace {

TEST(TerminalText, PrintableTextNewlinesTabsAndUtf8PassUnchanged) {
  EXPECT_EQ(safe_for_terminal("worker-1\tGET /a\n"), "worker-1\tGET /a\n");
  EXPECT_EQ(safe_for_terminal("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xad"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xad");
}

TEST(TerminalText, ControlsDelC1AndBadBytesBecomeVisibleEscapes) {
  EXPECT_EQ(safe_for_terminal("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
  EXPECT_EQ(safe_for_terminal("a\rb\x7f"), "a\\x0db\\x7f");
  EXPECT_EQ(safe_for_terminal("\xc2\x9b" "2J"), "\\xc2\\x9b2J") << "a C1 CSI in UTF-8";
  EXPECT_EQ(safe_for_terminal("\x9b" "2J"), "\\x9b2J") << "a raw 8-bit CSI";
  EXPECT_EQ(safe_for_terminal("\xe2\x82"), "\\xe2\\x82") << "a cut sequence";
  EXPECT_EQ(safe_for_terminal(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(safe_for_terminal("\xff\x80\x80"), "\\xff\\x80\\x80") << "never a UTF-8 lead byte";
}

}  // namespace
}  // namespace periscope::viewer
