// Live variables of the host: named values a person can read and, where the host allows, change
// from the manhole (`vars`, `get NAME`, `set NAME VALUE`), e.g. a log level.
//
// Threading: add() from any thread; getters and setters run on the agent's io thread, outside
// the registry lock, so they must be thread-safe with respect to the host's own threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace periscope::manhole {

struct Variable {
  std::string name;
  std::string help;
  std::function<std::string()> getter;
  // Empty for a read-only variable. Throw (std::exception) to reject a value; what() is shown.
  std::function<void(const std::string&)> setter;
};

struct VariableValue {
  std::string name;
  std::string value;  // or the getter's error, prefixed "<error: "
  std::string help;
  bool writable = false;
};

class VariableRegistry {
 public:
  [[nodiscard]] std::string add(Variable variable);  // empty on success, else why not
  std::vector<VariableValue> list() const;           // sorted by name, current values
  // The current value; on failure returns false and sets *error.
  bool get(const std::string& name, std::string* value, std::string* error) const;
  // Sets the value; on failure returns false and sets *error (unknown, read-only, rejected).
  bool set(const std::string& name, const std::string& value, std::string* error);
  std::vector<std::string> names() const;

  std::mutex& mutex() { return mutex_; }  // for pthread_atfork only

 private:
  std::shared_ptr<const Variable> find(const std::string& name) const;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Variable>> variables_;
};

}  // namespace periscope::manhole
