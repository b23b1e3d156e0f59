#include "manhole/command_registry.h"

#include <gtest/gtest.h>

#include "manhole/standard_commands.h"

namespace periscope::manhole {
namespace {

Handler echo() {
  return [](const Args& a) {
    std::string out;
    for (const auto& w : a) out += w + ";";
    return protocol::Reply::success(out);
  };
}

TEST(ArgSpec, CountsRequiredOptionalAndRepeating) {
  ArgSpec s;
  std::string err;
  ASSERT_TRUE(ArgSpec::parse("NAME [VALUE]", &s, &err));
  EXPECT_EQ(s.min_args, 1u);
  EXPECT_EQ(s.max_args, 2u);
  ASSERT_TRUE(ArgSpec::parse("[TID...]", &s, &err));
  EXPECT_TRUE(s.accepts(0));
  EXPECT_TRUE(s.accepts(500));
  ASSERT_TRUE(ArgSpec::parse("COMMAND ARGS...", &s, &err));
  EXPECT_FALSE(s.accepts(1)) << "a required repeating argument needs at least one";
  EXPECT_TRUE(s.accepts(2));
  EXPECT_TRUE(s.accepts(9));
  ASSERT_TRUE(ArgSpec::parse("", &s, &err));
  EXPECT_TRUE(s.accepts(0));
  EXPECT_FALSE(s.accepts(1));
}

TEST(ArgSpec, RejectsMalformedUsage) {
  ArgSpec s;
  std::string err;
  EXPECT_FALSE(ArgSpec::parse("[A] B", &s, &err));
  EXPECT_NE(err.find("required argument follows an optional"), std::string::npos);
  EXPECT_FALSE(ArgSpec::parse("A... B", &s, &err));
  EXPECT_FALSE(ArgSpec::parse("[A", &s, &err));
}

TEST(CommandRegistry, RunsHandlerWithArguments) {
  CommandRegistry r;
  ASSERT_EQ(r.add({"echo", "[WORD...]", "echo words", echo()}), "");
  protocol::Reply reply = r.run({"echo", "a", "b"});
  EXPECT_TRUE(reply.ok);
  EXPECT_EQ(reply.text, "a;b;");
}

TEST(CommandRegistry, RejectsBadNamesDuplicatesAndMissingHandlers) {
  CommandRegistry r;
  EXPECT_EQ(r.add({"ok", "", "", echo()}), "");
  EXPECT_NE(r.add({"ok", "", "", echo()}), "");
  EXPECT_NE(r.add({"Upper", "", "", echo()}), "");
  EXPECT_NE(r.add({"", "", "", echo()}), "");
  EXPECT_NE(r.add({"has space", "", "", echo()}), "");
  EXPECT_NE(r.add({std::string(33, 'a'), "", "", echo()}), "");
  EXPECT_NE(r.add({"nohandler", "", "", nullptr}), "");
  EXPECT_NE(r.add({"badusage", "[X] Y", "", echo()}), "");
}

TEST(CommandRegistry, UnknownCommandAndWrongArgCountAreErrors) {
  CommandRegistry r;
  ASSERT_EQ(r.add({"two", "A B", "", echo()}), "");
  protocol::Reply unknown = r.run({"nope"});
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.error, "unknown command 'nope' (type 'help' for the list)");
  protocol::Reply wrong = r.run({"two", "x"});
  EXPECT_FALSE(wrong.ok);
  EXPECT_EQ(wrong.error, "two: wrong number of arguments (1); usage: two A B");
}

TEST(CommandRegistry, HandlerExceptionsBecomeErrors) {
  CommandRegistry r;
  ASSERT_EQ(r.add({"boom", "", "", [](const Args&) -> protocol::Reply { throw std::runtime_error("kaput"); }}), "");
  ASSERT_EQ(r.add({"boom2", "", "", [](const Args&) -> protocol::Reply { throw 42; }}), "");
  EXPECT_EQ(r.run({"boom"}).error, "boom: kaput");
  EXPECT_FALSE(r.run({"boom2"}).ok);
}

TEST(CommandRegistry, HandlerMayAddCommands) {
  CommandRegistry r;
  ASSERT_EQ(r.add({"grow", "", "", [&r](const Args&) { return protocol::Reply::success(r.add({"more", "", "", echo()})); }}),
            "");
  EXPECT_TRUE(r.run({"grow"}).ok);
  EXPECT_TRUE(r.contains("more"));
}

TEST(StandardCommands, VariablesGetSetAndReject) {
  CommandRegistry commands;
  VariableRegistry vars;
  ASSERT_EQ(add_standard_commands(commands, vars), "");
  std::string level = "info";
  ASSERT_EQ(vars.add({"level", "log level", [&] { return level; },
                      [&](const std::string& v) {
                        if (v != "debug" && v != "info") throw std::invalid_argument("debug or info");
                        level = v;
                      }}),
            "");
  ASSERT_EQ(vars.add({"count", "", [] { return std::string("7"); }, nullptr}), "");
  ASSERT_EQ(vars.add({"broken", "", []() -> std::string { throw std::runtime_error("no value"); }, nullptr}), "");

  EXPECT_EQ(commands.run({"get", "level"}).text, "info\n");
  EXPECT_EQ(commands.run({"set", "level", "debug"}).text, "level = debug\n");
  EXPECT_EQ(level, "debug");
  EXPECT_EQ(commands.run({"set", "level", "loud"}).error, "set: cannot set level to 'loud': debug or info");
  EXPECT_EQ(commands.run({"set", "count", "1"}).error, "set: variable 'count' is read-only");
  EXPECT_EQ(commands.run({"get", "nope"}).error, "get: no variable 'nope' (type 'vars' for the list)");
  EXPECT_EQ(commands.run({"get", "broken"}).error, "get: no value");
  protocol::Reply list = commands.run({"vars"});
  EXPECT_NE(list.text.find("<error: no value>"), std::string::npos) << list.text;
  EXPECT_EQ(list.data["variables"].size(), 3u);
  EXPECT_EQ(vars.add({"level", "", [] { return std::string(); }, nullptr}), "variable 'level' already exists");
}

TEST(StandardCommands, HelpListsEveryCommandAndOne) {
  CommandRegistry commands;
  VariableRegistry vars;
  ASSERT_EQ(add_standard_commands(commands, vars), "");
  protocol::Reply all = commands.run({"help"});
  EXPECT_EQ(all.data["commands"].size(), 5u);
  EXPECT_NE(all.text.find("set NAME VALUE"), std::string::npos);
  protocol::Reply one = commands.run({"help", "set"});
  EXPECT_EQ(one.data["commands"][0]["changes_state"], true);
  EXPECT_FALSE(commands.run({"help", "nope"}).ok);
  EXPECT_TRUE(commands.run({"quit"}).close_session);
}

}  // namespace
}  // namespace periscope::manhole
