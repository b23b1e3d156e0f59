#include "protocol/protocol.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/socket_location.h"

namespace periscope::protocol {
namespace {

TEST(Protocol, FramesAreOneLineOfJson) {
  protocol::Reply r = Reply::success("line one\nline two\n", {{"k", "v"}});
  std::string frame = encode_frame("cmd", r);
  EXPECT_EQ(frame.find('\n'), frame.size() - 1);
  auto j = nlohmann::json::parse(frame);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["text"], "line one\nline two\n");
  EXPECT_EQ(j["data"]["k"], "v");
}

TEST(Protocol, InvalidUtf8IsReplacedNotThrown) {
  protocol::Reply r = Reply::failure(std::string("bad \xc3\x28 byte"));
  std::string frame;
  ASSERT_NO_THROW(frame = encode_frame(std::string("\xff"), r));
  EXPECT_FALSE(nlohmann::json::parse(frame)["ok"].get<bool>());
}

TEST(Protocol, TextRenderingMarksErrors) {
  EXPECT_EQ(render_text(Reply::failure("nope")), "error: nope\n");
  EXPECT_EQ(render_text(Reply::success("fine")), "fine\n");
}

TEST(Protocol, JsonRequestsCarryArgumentsVerbatim) {
  auto req = parse_request(protocol::encode_request({"set", "msg", "two words\nand a newline"}), true);
  ASSERT_EQ(req.error, "");
  EXPECT_EQ(req.words, (std::vector<std::string>{"set", "msg", "two words\nand a newline"}));
  EXPECT_EQ(parse_request(R"({"command":"x","args":[1]})", true).error, "\"args\" must be an array of strings");
  EXPECT_EQ(parse_request(R"({"args":[]})", true).error, "JSON request needs a non-empty string \"command\"");
  EXPECT_EQ(parse_request("{oops", true).error, "malformed JSON request");
  // In text mode a brace is just a word.
  EXPECT_EQ(parse_request("{oops", false).words, (std::vector<std::string>{"{oops"}));
}

TEST(SocketLocation, ParsesOnlyPidSocketNames) {
  EXPECT_EQ(protocol::pid_from_socket_name("1234.sock"), 1234);
  EXPECT_FALSE(protocol::pid_from_socket_name(".sock"));
  EXPECT_FALSE(protocol::pid_from_socket_name("12a.sock"));
  EXPECT_FALSE(protocol::pid_from_socket_name("0.sock"));
  EXPECT_FALSE(protocol::pid_from_socket_name("1234.socket"));
  EXPECT_FALSE(protocol::pid_from_socket_name("99999999999.sock"));
}

TEST(SocketLocation, EnvironmentChoosesTheDirectory) {
  ::setenv("PERISCOPE_SOCKET_DIR", "/x/y", 1);
  EXPECT_EQ(protocol::default_socket_dir(), "/x/y");
  ::unsetenv("PERISCOPE_SOCKET_DIR");
  ::setenv("XDG_RUNTIME_DIR", "/run/user/5", 1);
  EXPECT_EQ(protocol::default_socket_dir(), "/run/user/5/periscope");
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(protocol::default_socket_dir(), "/tmp/periscope-" + std::to_string(::geteuid()));
}

TEST(SocketLocation, PrepareMakesDirectoryPrivate) {
  char tmpl[] = "/tmp/periscope-unit-XXXXXX";
  ASSERT_TRUE(::mkdtemp(tmpl));
  std::string dir = std::string(tmpl) + "/a/b";
  EXPECT_EQ(protocol::prepare_socket_dir(dir), "");
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ::chmod(dir.c_str(), 0777);
  EXPECT_EQ(protocol::prepare_socket_dir(dir), "");
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "a loosened directory is tightened again";
  EXPECT_NE(protocol::prepare_socket_dir("relative/dir"), "");
  std::string file = std::string(tmpl) + "/file";
  ::close(::creat(file.c_str(), 0600));
  EXPECT_NE(protocol::prepare_socket_dir(file).find("is not a directory"), std::string::npos);
  std::string cmd = std::string("rm -rf ") + tmpl;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace periscope::protocol
