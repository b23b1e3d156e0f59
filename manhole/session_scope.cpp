#include "manhole/session_scope.h"

namespace periscope::manhole {

namespace {
thread_local std::vector<std::function<void()>>* t_undo_list = nullptr;
}  // namespace

bool in_session() { return t_undo_list != nullptr; }

bool when_session_ends(std::function<void()> undo) {
  if (!t_undo_list) return false;
  t_undo_list->push_back(std::move(undo));
  return true;
}

SessionScope::SessionScope(std::vector<std::function<void()>>* undo_list) : previous_(t_undo_list) {
  t_undo_list = undo_list;
}

SessionScope::~SessionScope() { t_undo_list = previous_; }

}  // namespace periscope::manhole
