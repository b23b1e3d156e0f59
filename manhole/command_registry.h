// The commands a manhole session can run: name, argument spec, one-line help, handler.
// Both the agent (built-ins) and the host application (periscope::add_command) add to it.
//
// Threading: add() and list() from any thread; run() is called on the agent's io thread and
// invokes handlers outside the registry lock, so a handler may itself add commands.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "manhole/arg_spec.h"
#include "protocol/protocol.h"

namespace periscope::manhole {

using Args = std::vector<std::string>;  // the words after the command name
using Handler = std::function<protocol::Reply(const Args&)>;

struct Command {
  std::string name;
  std::string usage;  // argument spec, see ArgSpec
  std::string help;   // one line
  Handler handler;
  bool changes_state = false;  // e.g. `set`: served over HTTP by POST only
  bool off_thread = false;     // the application's: may take long, runs off the io thread (command_runner.h)
};

struct CommandSummary {
  std::string name;
  std::string usage;
  std::string help;
  bool changes_state = false;
};

class CommandRegistry {
 public:
  // Returns an empty string on success, otherwise why the command was not added.
  [[nodiscard]] std::string add(Command command);
  // Looks up words[0], checks the argument count, runs the handler; never throws.
  protocol::Reply run(const std::vector<std::string>& words) const;
  std::vector<CommandSummary> list() const;  // sorted by name
  bool contains(const std::string& name) const;
  bool runs_off_thread(const std::string& name) const;  // false for an unknown name

  std::mutex& mutex() { return mutex_; }  // for pthread_atfork only

 private:
  struct Entry {
    Command command;
    ArgSpec spec;
  };
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Entry>> commands_;
};

// A valid command or variable name: 1-32 of [a-z0-9_.-], starting with a letter.
bool is_valid_name(const std::string& name);

}  // namespace periscope::manhole
