#include "manhole/command_registry.h"

#include <exception>

#include "protocol/command_line.h"

namespace periscope::manhole {

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 32 || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string CommandRegistry::add(Command command) {
  if (!is_valid_name(command.name)) {
    return "invalid command name '" + protocol::printable(command.name) +
           "': use 1-32 of a-z 0-9 _ . -, starting with a letter";
  }
  if (!command.handler) return "command '" + command.name + "' has no handler";
  auto entry = std::make_shared<Entry>();
  std::string error;
  if (!ArgSpec::parse(command.usage, &entry->spec, &error)) return "command '" + command.name + "': " + error;
  entry->command = std::move(command);
  std::lock_guard lock(mutex_);
  auto [it, inserted] = commands_.emplace(entry->command.name, entry);
  if (!inserted) return "command '" + entry->command.name + "' already exists";
  return {};
}

protocol::Reply CommandRegistry::run(const std::vector<std::string>& words) const {
  if (words.empty()) return protocol::Reply::success("");
  std::shared_ptr<const Entry> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = commands_.find(words[0]);
    if (it != commands_.end()) entry = it->second;
  }
  if (!entry) return protocol::Reply::failure("unknown command '" + protocol::printable(words[0]) + "' (type 'help' for the list)");
  Args args(words.begin() + 1, words.end());
  if (!entry->spec.accepts(args.size())) {
    std::string usage = entry->command.name + (entry->spec.usage.empty() ? "" : " " + entry->spec.usage);
    return protocol::Reply::failure(entry->command.name + ": wrong number of arguments (" + std::to_string(args.size()) +
                          "); usage: " + usage);
  }
  try {
    return entry->command.handler(args);
  } catch (const std::exception& e) {
    return protocol::Reply::failure(entry->command.name + ": " + e.what());
  } catch (...) {
    return protocol::Reply::failure(entry->command.name + ": failed with an unknown exception");
  }
}

std::vector<CommandSummary> CommandRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<CommandSummary> out;
  for (const auto& [name, entry] : commands_) {
    out.push_back({name, entry->spec.usage, entry->command.help, entry->command.changes_state});
  }
  return out;
}

bool CommandRegistry::runs_off_thread(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = commands_.find(name);
  return it != commands_.end() && it->second->command.off_thread;
}

bool CommandRegistry::contains(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return commands_.count(name) != 0;
}

}  // namespace periscope::manhole
