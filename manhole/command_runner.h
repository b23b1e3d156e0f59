// Runs a command for a session or an HTTP request without letting it hold the agent: commands the
// application added (periscope::add_command) run on a thread of their own, and when one does not
// answer within the timeout the client gets a reply saying so while it goes on in the host; the
// agent's own commands run at once on the io thread.
//
// Threading: io thread; `done` runs there, exactly once.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "manhole/command_registry.h"

namespace boost::asio {
class io_context;
}

namespace periscope::manhole {

constexpr int kMaxCommandsRunning = 4;  // application commands at once; more are refused

void run_command(const CommandRegistry& registry, const std::vector<std::string>& words, boost::asio::io_context& io,
                 std::chrono::milliseconds timeout, std::function<void(protocol::Reply)> done);

// Before `io` is destroyed: answers of commands still running are dropped, not posted to it.
void drop_answers_for(boost::asio::io_context& io);

}  // namespace periscope::manhole
