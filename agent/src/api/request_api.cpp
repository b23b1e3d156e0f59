// periscope::Request and its C API: thin, noexcept wrappers over the request table.
#include <map>
#include <mutex>

#include "agent/src/api/saved_thresholds.h"
#include "agent/src/watchdog/request_table.h"
#include "periscope/periscope.h"

namespace periscope {

namespace {

agent::RequestSlot* as_slot(void* p) { return static_cast<agent::RequestSlot*>(p); }

// Per-name thresholds outlive any one table (set before start, kept across restarts).
std::mutex& threshold_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::map<std::string, int64_t>& thresholds() {
  static auto* t = new std::map<std::string, int64_t>;
  return *t;
}

}  // namespace

Request::Request(const char* name, unsigned long long id) noexcept : slot_(nullptr) {
  if (auto* table = agent::request_table()) slot_ = table->begin(name, id);
}

Request::~Request() {
  if (slot_) agent::end_request(as_slot(slot_));
}

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (slot_) agent::end_request(as_slot(slot_));
    slot_ = other.slot_;
    other.slot_ = nullptr;
  }
  return *this;
}

void Request::detach() noexcept {
  if (slot_) agent::RequestTable::detach(as_slot(slot_));
}

void Request::attach() noexcept {
  if (slot_) agent::RequestTable::attach(as_slot(slot_));
}

Status set_slow_threshold(const std::string& name, std::chrono::milliseconds threshold) {
  if (threshold.count() < 0) return Status::failure("set_slow_threshold: negative threshold for '" + name + "'");
  try {
    std::lock_guard lock(threshold_mutex());
    thresholds()[name.substr(0, agent::kRequestNameBytes - 1)] = threshold.count();
  } catch (...) {
    return Status::failure("set_slow_threshold: out of memory");
  }
  if (auto* table = agent::request_table()) table->set_threshold(name.c_str(), threshold.count());
  return Status::success();
}

namespace agent {

void apply_saved_thresholds(RequestTable& table) {
  std::lock_guard lock(threshold_mutex());
  for (const auto& [name, ms] : thresholds()) table.set_threshold(name.c_str(), ms);
}

}  // namespace agent
}  // namespace periscope

extern "C" {

periscope_request_t* periscope_request_begin(const char* name) { return periscope_request_begin_id(name, 0); }

periscope_request_t* periscope_request_begin_id(const char* name, unsigned long long id) {
  auto* table = periscope::agent::request_table();
  return table ? reinterpret_cast<periscope_request_t*>(table->begin(name, id)) : nullptr;
}

void periscope_request_end(periscope_request_t* request) {
  if (request) periscope::agent::end_request(reinterpret_cast<periscope::agent::RequestSlot*>(request));
}

void periscope_request_detach(periscope_request_t* request) {
  if (request) periscope::agent::RequestTable::detach(reinterpret_cast<periscope::agent::RequestSlot*>(request));
}

void periscope_request_attach(periscope_request_t* request) {
  if (request) periscope::agent::RequestTable::attach(reinterpret_cast<periscope::agent::RequestSlot*>(request));
}

}  // extern "C"
