#include "manhole/session_scope.h"

#include <atomic>

namespace periscope::manhole {

namespace {
thread_local std::vector<std::function<void()>>* t_undo_list = nullptr;
thread_local uint64_t t_session_id = 0;
std::atomic<uint64_t> g_sessions{0};
}  // namespace

bool in_session() { return t_undo_list != nullptr; }

bool when_session_ends(std::function<void()> undo) {
  if (!t_undo_list) return false;
  t_undo_list->push_back(std::move(undo));
  return true;
}

uint64_t session_id() { return t_session_id; }
uint64_t next_session_id() { return ++g_sessions; }

SessionScope::SessionScope(std::vector<std::function<void()>>* undo_list, uint64_t id)
    : previous_(t_undo_list), previous_id_(t_session_id) {
  t_undo_list = undo_list;
  t_session_id = id;
}

SessionScope::~SessionScope() {
  t_undo_list = previous_;
  t_session_id = previous_id_;
}

}  // namespace periscope::manhole
