// What a command may know of the manhole session it runs in: it can leave something to be undone
// when that session ends, however it ends (the client quits, is killed, its terminal closes, the
// idle timeout, the agent stops). A profile started from a session stops with it.
//
// Threading: io thread only (commands run there, one at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace periscope::manhole {

// Whether the running command came through a manhole session (not HTTP, not a test's direct call).
bool in_session();
// Runs `undo` when the running command's session ends; false (and nothing kept) outside a session.
bool when_session_ends(std::function<void()> undo);
// The running command's session, unique in the process; 0 outside a session.
uint64_t session_id();
uint64_t next_session_id();  // for a new session


// The session's side: marks `undo_list` as the running command's while it lives.
class SessionScope {
 public:
  SessionScope(std::vector<std::function<void()>>* undo_list, uint64_t id);
  ~SessionScope();
  SessionScope(const SessionScope&) = delete;
  SessionScope& operator=(const SessionScope&) = delete;

 private:
  std::vector<std::function<void()>>* previous_;
  uint64_t previous_id_;
};

}  // namespace periscope::manhole
