#include "manhole/standard_commands.h"

#include <algorithm>

#include "protocol/text_table.h"

namespace periscope::manhole {

namespace {

protocol::Reply help(const CommandRegistry& commands, const Args& args) {
  auto all = commands.list();
  if (!args.empty()) {
    auto it = std::find_if(all.begin(), all.end(), [&](const CommandSummary& c) { return c.name == args[0]; });
    if (it == all.end()) return protocol::Reply::failure("help: no command '" + args[0] + "'");
    all = {*it};
  }
  nlohmann::json data = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : all) {
    data.push_back({{"name", c.name}, {"usage", c.usage}, {"help", c.help}, {"changes_state", c.changes_state}});
    rows.push_back({c.name + (c.usage.empty() ? "" : " " + c.usage), c.help});
  }
  return protocol::Reply::success(protocol::format_table(rows), {{"commands", data}});
}

protocol::Reply vars(const VariableRegistry& variables) {
  nlohmann::json data = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"NAME", "VALUE", "ACCESS", "DESCRIPTION"}};
  for (const auto& v : variables.list()) {
    data.push_back({{"name", v.name}, {"value", v.value}, {"writable", v.writable}, {"help", v.help}});
    rows.push_back({v.name, v.value, v.writable ? "rw" : "ro", v.help});
  }
  if (rows.size() == 1) return protocol::Reply::success("no variables registered\n", {{"variables", data}});
  return protocol::Reply::success(protocol::format_table(rows), {{"variables", data}});
}

}  // namespace

std::string add_standard_commands(CommandRegistry& commands, VariableRegistry& variables) {
  std::vector<Command> list;
  list.push_back({"help", "[COMMAND]", "list commands, or show one command's usage",
                  [&commands](const Args& a) { return help(commands, a); }});
  list.push_back({"quit", "", "close this session", [](const Args&) {
                    protocol::Reply r = protocol::Reply::success("bye\n");
                    r.close_session = true;
                    return r;
                  }});
  list.push_back({"vars", "", "list live variables and their values",
                  [&variables](const Args&) { return vars(variables); }});
  list.push_back({"get", "NAME", "print one variable's value", [&variables](const Args& a) {
                    std::string value, error;
                    if (!variables.get(a[0], &value, &error)) return protocol::Reply::failure("get: " + error);
                    return protocol::Reply::success(value + "\n", {{"name", a[0]}, {"value", value}});
                  }});
  Command set{"set", "NAME VALUE", "change a writable variable", [&variables](const Args& a) {
                std::string error, value;
                if (!variables.set(a[0], a[1], &error)) return protocol::Reply::failure("set: " + error);
                if (!variables.get(a[0], &value, &error)) value = a[1];
                return protocol::Reply::success(a[0] + " = " + value + "\n", {{"name", a[0]}, {"value", value}});
              }};
  set.changes_state = true;
  list.push_back(std::move(set));
  for (auto& c : list) {
    if (auto err = commands.add(std::move(c)); !err.empty()) return err;
  }
  return {};
}

}  // namespace periscope::manhole
