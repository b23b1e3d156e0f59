// A small host built against the installed package: starts the agent, adds a command and a
// variable, serves a request, and prints its socket. Exits at EOF on stdin.
#include <periscope/periscope.h>

#include <atomic>
#include <iostream>
#include <string>

int main() {
  std::atomic<int> items{42};
  auto added = periscope::add_command("count", "", "how many items the inventory holds",
                                      [&](const std::vector<std::string>&) { return std::to_string(items.load()); });
  auto variable = periscope::add_variable(
      "items", [&] { return std::to_string(items.load()); }, [&](const std::string& v) { items = std::stoi(v); });
  periscope::Status started = periscope::start();
  if (!added || !variable || !started) {
    std::cerr << "inventory: " << started.message() << added.message() << variable.message() << "\n";
    return 1;
  }
  { periscope::Request request("restock"); }
  std::cout << "socket " << periscope::socket_path() << std::endl;
  for (std::string line; std::getline(std::cin, line);) {
  }
  periscope::stop();
  return 0;
}
