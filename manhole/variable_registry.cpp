#include "manhole/variable_registry.h"

#include <exception>

#include "protocol/command_line.h"
#include "manhole/command_registry.h"

namespace periscope::manhole {

namespace {

// Runs a host callback; an exception becomes an error message, never escapes.
template <typename F>
bool guarded(F&& f, std::string* error) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
  } catch (...) {
    *error = "unknown exception";
  }
  return false;
}

}  // namespace

std::string VariableRegistry::add(Variable variable) {
  if (!is_valid_name(variable.name)) {
    return "invalid variable name '" + protocol::printable(variable.name) +
           "': use 1-32 of a-z 0-9 _ . -, starting with a letter";
  }
  if (!variable.getter) return "variable '" + variable.name + "' has no getter";
  auto shared = std::make_shared<const Variable>(std::move(variable));
  std::lock_guard lock(mutex_);
  if (!variables_.emplace(shared->name, shared).second) return "variable '" + shared->name + "' already exists";
  return {};
}

std::shared_ptr<const Variable> VariableRegistry::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = variables_.find(name);
  return it == variables_.end() ? nullptr : it->second;
}

std::vector<std::string> VariableRegistry::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, v] : variables_) out.push_back(name);
  return out;
}

std::vector<VariableValue> VariableRegistry::list() const {
  std::vector<VariableValue> out;
  for (const auto& name : names()) {
    auto v = find(name);
    if (!v) continue;
    VariableValue row{v->name, {}, v->help, static_cast<bool>(v->setter)};
    std::string error;
    if (!guarded([&] { row.value = v->getter(); }, &error)) row.value = "<error: " + error + ">";
    out.push_back(std::move(row));
  }
  return out;
}

bool VariableRegistry::get(const std::string& name, std::string* value, std::string* error) const {
  auto v = find(name);
  if (!v) {
    *error = "no variable '" + protocol::printable(name) + "' (type 'vars' for the list)";
    return false;
  }
  return guarded([&] { *value = v->getter(); }, error);
}

bool VariableRegistry::set(const std::string& name, const std::string& value, std::string* error) {
  auto v = find(name);
  if (!v) {
    *error = "no variable '" + protocol::printable(name) + "' (type 'vars' for the list)";
    return false;
  }
  if (!v->setter) {
    *error = "variable '" + name + "' is read-only";
    return false;
  }
  std::string why;
  if (!guarded([&] { v->setter(value); }, &why)) {
    *error = "cannot set " + name + " to '" + protocol::printable(value) + "': " + why;
    return false;
  }
  return true;
}

}  // namespace periscope::manhole
