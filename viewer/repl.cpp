// `periscope attach PID`: an interactive REPL into the agent's manhole with line editing, history
// (~/.periscope_history) and tab completion of command and variable names (libedit). With stdin
// not a terminal it reads commands line by line, so it can be scripted.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

#include <editline/readline.h>

#include "protocol/command_line.h"
#include "viewer/cli_errors.h"
#include "viewer/client.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

namespace {

// libedit's completion callbacks are plain functions: they read these.
std::vector<std::string> g_command_names;
std::vector<std::string> g_variable_names;
const std::vector<std::string>* g_candidates = nullptr;

char* next_match(const char* text, int state) {
  static size_t index;
  if (state == 0) index = 0;
  const std::string prefix = text;
  while (g_candidates && index < g_candidates->size()) {
    const std::string& c = (*g_candidates)[index++];
    if (c.compare(0, prefix.size(), prefix) == 0) return ::strdup(c.c_str());
  }
  return nullptr;
}

char** complete(const char* text, int start, int) {
  std::string before(rl_line_buffer, static_cast<size_t>(start));
  auto words = protocol::split_command_line(before).words;
  if (words.empty()) g_candidates = &g_command_names;
  else if (words.size() == 1 && (words[0] == "get" || words[0] == "set")) g_candidates = &g_variable_names;
  else if (words.size() == 1 && words[0] == "help") g_candidates = &g_command_names;
  else g_candidates = nullptr;
  rl_attempted_completion_over = 1;  // never fall back to file names
  return rl_completion_matches(text, next_match);
}

void load_completions(Client& client) {
  auto help = client.call({"help"});
  g_command_names.clear();
  for (const auto& c : help["data"]["commands"]) g_command_names.push_back(c.value("name", ""));
  auto vars = client.call({"vars"});
  g_variable_names.clear();
  if (vars.value("ok", false)) {
    for (const auto& v : vars["data"]["variables"]) g_variable_names.push_back(v.value("name", ""));
  }
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  return home ? std::string(home) + "/.periscope_history" : std::string();
}

// Runs one line; returns false when the session is over.
bool run_line(Client& client, const std::string& line) {
  auto parsed = protocol::split_command_line(line);
  if (!parsed.error.empty()) {
    std::printf("error: %s\n", parsed.error.c_str());
    return true;
  }
  if (parsed.words.empty()) return true;
  auto frame = client.call(parsed.words);
  if (frame.value("ok", false)) {
    print_untrusted(frame.value("text", ""));
  } else {
    print_untrusted("error: " + frame.value("error", "command failed") + "\n");
  }
  std::fflush(stdout);
  return parsed.words[0] != "quit";
}

}  // namespace

int run_attach(pid_t pid, const CommonOptions& options) {
  Client client = Client::connect_to_pid(pid, options.timeout);
  const bool interactive = ::isatty(STDIN_FILENO);
  if (!interactive) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!run_line(client, line)) break;
    }
    return kExitOk;
  }
  load_completions(client);
  const auto& hello = client.hello();
  std::printf("attached to pid %d (%s), periscope %s. Tab completes; 'help' lists commands; Ctrl-D leaves.\n",
              pid, safe_for_terminal(hello.value("name", "?")).c_str(),
              safe_for_terminal(hello.value("version", "?")).c_str());
  rl_attempted_completion_function = complete;
  const std::string history = history_path();
  stifle_history(1000);
  if (!history.empty()) read_history(history.c_str());
  const std::string prompt = hello.value("name", "periscope") + ":" + std::to_string(pid) + "> ";
  int exit_code = kExitOk;
  for (;;) {
    char* raw = readline(prompt.c_str());
    if (!raw) {
      std::printf("\n");
      break;
    }
    std::string line = raw;
    std::free(raw);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    add_history(line.c_str());
    try {
      if (!run_line(client, line)) break;
    } catch (const CliError& e) {
      print_error(e.what());
      exit_code = e.exit_code();
      break;
    }
  }
  if (!history.empty()) write_history(history.c_str());
  return exit_code;
}

}  // namespace periscope::viewer
