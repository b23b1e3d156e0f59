#include "tests/e2e/harness.h"

#include <arpa/inet.h>
#include <cerrno>
#include <dirent.h>
#include <iterator>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

extern char** environ;

namespace periscope::test {

std::string cli_path() { return PERISCOPE_TEST_CLI; }
std::string agent_path() { return PERISCOPE_TEST_AGENT; }
std::string agent_preload() {
  const std::string runtime = PERISCOPE_TEST_SANITIZER_RUNTIME;
  return runtime.empty() ? agent_path() : runtime + ":" + agent_path();
}
std::string target_path(const std::string& name) {
  if (name == "demo_server") return PERISCOPE_TEST_DEMO;
  return std::string(PERISCOPE_TEST_TARGET_DIR) + "/" + name;
}

std::string source_path(const std::string& relative) { return std::string(PERISCOPE_TEST_SOURCE_DIR) + "/" + relative; }

std::string plugin_path() { return PERISCOPE_TEST_PLUGIN; }

int marker_line(const std::string& file, const std::string& marker) {
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find(marker) != std::string::npos) return n;
  }
  return 0;
}

namespace {

std::vector<std::string> merged_env(const Env& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) {
    if (v.empty()) env.erase(k);
    else env[k] = v;
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In a forked child: drop to `uid` (and the same gid), or exit 126.
void become(uid_t uid) {
  if (uid == kSameUser) return;
  if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0) {
    _exit(126);
  }
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string line_of(const std::string& text, size_t n) {
  std::istringstream lines(text);
  std::string line;
  for (size_t i = 0; i <= n; ++i) {
    if (!std::getline(lines, line)) return {};
  }
  return line;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


Process::Process(const std::vector<std::string>& argv, const Env& env, uid_t run_as) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  char tmpl[] = "/tmp/periscope-test-stderr-XXXXXX";
  int err_fd = ::mkostemp(tmpl, O_CLOEXEC);
  if (err_fd < 0) throw std::runtime_error("mkostemp");
  stderr_path_ = tmpl;
  if (run_as != kSameUser) (void)::fchown(err_fd, run_as, run_as);
  auto env_strings = merged_env(env);
  auto args = argv;
  auto c_env = c_strings(env_strings);
  auto c_args = c_strings(args);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err_fd, 2);
    become(run_as);
    ::execve(c_args[0], c_args.data(), c_env.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err_fd);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
}

Process::~Process() {
  if (!reaped_) {
    kill(SIGKILL);
    wait(5s);
  }
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  ::unlink(stderr_path_.c_str());
}

void Process::write_stdin(const std::string& text) {
  // A child that died must fail the test that wrote to it, not kill the test binary by SIGPIPE.
  static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)sigpipe_ignored;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(stdin_fd_, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void Process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = stdout_buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = stdout_buffer_.substr(0, nl);
      stdout_buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    stdout_buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::string Process::stderr_text() const { return slurp(stderr_path_); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reaped_) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return exit_code_of(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return std::nullopt;
}

void Process::kill(int sig) {
  if (!reaped_ && pid_ > 0) ::kill(pid_, sig);
}

RunResult run(const std::vector<std::string>& argv, const Env& env, const std::string& stdin_text, uid_t run_as,
              std::chrono::milliseconds timeout) {
  Process p(argv, env, run_as);
  p.write_stdin(stdin_text);
  p.close_stdin();
  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (auto line = p.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now()))) {
    result.out += *line + "\n";
  }
  auto code = p.wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()) +
                     100ms);
  result.exit_code = code ? *code : -1;
  result.err = p.stderr_text();
  return result;
}

RunResult periscope(const std::vector<std::string>& args, const Env& env, uid_t run_as) {
  std::vector<std::string> argv{cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env, {}, run_as);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool profile_running(const std::string& pid) {
  auto status = periscope({"exec", "--json", pid, "profile", "status"});
  auto j = nlohmann::json::parse(status.out, nullptr, false);
  return j.is_object() && j.value("running", false);
}

RunResult headless_dom(const std::string& url, const std::string& scratch_dir) {
  return run({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
              "--disable-sync", "--user-data-dir=" + scratch_dir + "/chromium", "--dump-dom", url},
             {}, "", static_cast<uid_t>(-1), 120s);
}

bool may_ptrace_siblings() {
  if (::geteuid() == 0) return true;
  std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
  int scope = 0;
  return !(in >> scope) || scope == 0;
}

SocketDir::SocketDir() {
  char tmpl[] = "/tmp/periscope-e2e-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

SocketDir::~SocketDir() {
  std::string cmd = "rm -rf '" + path_ + "'";
  (void)!std::system(cmd.c_str());
}

std::string SocketDir::socket_for(pid_t pid) const { return path_ + "/" + std::to_string(pid) + ".sock"; }

Env SocketDir::env() const { return {{"PERISCOPE_SOCKET_DIR", path_}}; }

namespace {
Env target_env(const SocketDir& dir, Env extra) {
  Env env = dir.env();
  env["LD_PRELOAD"] = agent_preload();
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}
}  // namespace

AgentTarget::AgentTarget(const SocketDir& dir, Env extra_env)
    : process_({target_path("host_target")}, target_env(dir, extra_env)) {
  auto ready = process_.read_line();
  if (!ready || ready->rfind("ready ", 0) != 0) throw std::runtime_error("host_target did not start");
  auto custom_dir = extra_env.find("PERISCOPE_SOCKET_DIR");
  socket_ = custom_dir == extra_env.end() ? dir.socket_for(process_.pid())
                                          : custom_dir->second + "/" + std::to_string(process_.pid()) + ".sock";
  // The agent starts before main(); a session proves it accepts.
  if (!wait_until([&] {
        return RawConnection(socket_).read_until("periscope> ").find("periscope> ") != std::string::npos;
      })) {
    throw std::runtime_error("no agent answered on " + socket_ + "; host stderr: " + process_.stderr_text());
  }
}

namespace {

int connect_unix(const std::string& path, int* err) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *err = errno;
    ::close(fd);
    return -1;
  }
  return fd;
}

// Connects as another user in a forked child and passes the connected fd back (SO_PEERCRED
// records the credentials at connect time, so the agent sees the other user).
int connect_unix_as(const std::string& path, uid_t uid, int* err) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    become(uid);
    int e = 0;
    int fd = connect_unix(path, &e);
    char byte = static_cast<char>(fd < 0 ? e : 0);
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    (void)!::sendmsg(pair[1], &msg, 0);
    _exit(0);
  }
  ::close(pair[1]);
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  int fd = -1;
  if (::recvmsg(pair[0], &msg, MSG_CMSG_CLOEXEC) == 1) {
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    else *err = byte;
  }
  ::close(pair[0]);
  ::waitpid(child, nullptr, 0);
  return fd;
}

}  // namespace

RawConnection::RawConnection(const std::string& socket_path, uid_t run_as) {
  fd_ = run_as == kSameUser ? connect_unix(socket_path, &connect_errno_)
                            : connect_unix_as(socket_path, run_as, &connect_errno_);
}

RawConnection RawConnection::tcp(const std::string& address) {
  RawConnection c;
  auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    c.connect_errno_ = errno;
    ::close(c.fd_);
    c.fd_ = -1;
  }
  return c;
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), connect_errno_(other.connect_errno_), buffer_(std::move(other.buffer_)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(const std::string& bytes) {
  size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::string RawConnection::read_until(const std::string& marker, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto pos = buffer_.find(marker);
    if (pos != std::string::npos) {
      std::string out = buffer_.substr(0, pos + marker.size());
      buffer_.erase(0, pos + marker.size());
      return out;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (fd_ < 0 || left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    buffer_.append(buf, static_cast<size_t>(n));
  }
  std::string out = std::move(buffer_);
  buffer_.clear();
  return out;
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
  }
  return false;
}

HttpResult http_request(const std::string& address, const std::string& method, const std::string& target,
                        std::chrono::milliseconds timeout) {
  return http_request(address, method, target, {}, {}, timeout);
}

HttpResult http_request(const std::string& address, const std::string& method, const std::string& target,
                        const std::vector<std::string>& headers, const std::string& body,
                        std::chrono::milliseconds timeout) {
  HttpResult result;
  RawConnection c = RawConnection::tcp(address);
  if (!c.connected()) return result;
  std::string head = method + " " + target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& h : headers) {
    head += h + "\r\n";
    has_host |= h.rfind("Host:", 0) == 0;
  }
  if (!has_host) head += "Host: " + address + "\r\n";
  if (!body.empty()) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  c.send(head + "Connection: close\r\n\r\n" + body);
  std::string all = c.read_until(std::string(1, '\0') + "never", timeout);  // until EOF
  auto end = all.find("\r\n\r\n");
  if (end == std::string::npos || all.rfind("HTTP/1.", 0) != 0) return result;
  result.headers = all.substr(0, end);
  result.body = all.substr(end + 4);
  result.status = std::atoi(all.c_str() + 9);
  return result;
}

DemoWithHttp::DemoWithHttp(const SocketDir& dir, Env extra_env)
    : process_({target_path("demo_server"), "--port", "0", "--threads", "2"}, [&] {
        Env env = dir.env();
        env["PERISCOPE_HTTP"] = "127.0.0.1:0";
        for (auto& [k, v] : extra_env) env[k] = v;
        return env;
      }()) {
  auto ready = process_.read_line();
  // "demo_server listening on http://127.0.0.1:PORT (pid N); metrics on http://127.0.0.1:PORT/metrics"
  std::smatch m;
  static const std::regex line(R"(listening on http://([0-9.:]+) .*metrics on http://([0-9.:]+)/metrics)");
  if (!ready || !std::regex_search(*ready, m, line)) {
    throw std::runtime_error("demo_server did not start with HTTP: " + ready.value_or("(no line)") +
                             "; stderr: " + process_.stderr_text());
  }
  demo_ = m[1];
  admin_ = m[2];
}

double thread_cpu_seconds(pid_t pid, const std::string& name) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (!d) return -1;
  double seconds = -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(task + "/" + e->d_name + "/comm");
    std::string c;
    std::getline(comm, c);
    if (c != name) continue;
    std::ifstream stat(task + "/" + e->d_name + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), {});
    std::istringstream rest(all.substr(all.rfind(')') + 2));
    std::string field;
    long ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stol(field);
    }
    seconds = static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  ::closedir(d);
  return seconds;
}

}  // namespace periscope::test
