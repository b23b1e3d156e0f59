#include "manhole/command_runner.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <unistd.h>

#include "manhole/quiet_thread.h"

namespace periscope::manhole {

namespace asio = boost::asio;

namespace {

// Application commands running now, in this process (a fork child starts from none: the
// parent's threads are not in it).
struct Running {
  std::mutex lock;
  pid_t owner = 0;
  int count = 0;
};
Running& running() {
  static Running* r = new Running;  // leaked: detached threads may outlive static destruction
  return *r;
}

bool take_slot() {
  Running& r = running();
  std::lock_guard held(r.lock);
  if (r.owner != ::getpid()) r.owner = ::getpid(), r.count = 0;
  if (r.count >= kMaxCommandsRunning) return false;
  ++r.count;
  return true;
}

void give_slot() {
  Running& r = running();
  std::lock_guard held(r.lock);
  if (r.owner == ::getpid() && r.count > 0) --r.count;
}

// Where answers may still go: io contexts not yet destroyed (drop_answers_for).
struct Outlets {
  std::mutex lock;
  std::map<asio::io_context*, uint64_t> generation;  // absent: gone
  uint64_t next = 0;
};
Outlets& outlets() {
  static Outlets* o = new Outlets;  // leaked, as running()
  return *o;
}
uint64_t outlet_of(asio::io_context& io) {
  Outlets& o = outlets();
  std::lock_guard held(o.lock);
  auto [it, fresh] = o.generation.emplace(&io, 0);
  if (fresh) it->second = ++o.next;
  return it->second;
}

// Posts `f` to `io` unless it was dropped since `generation` was taken.
template <typename F>
void post_if_alive(asio::io_context& io, uint64_t generation, F&& f) {
  Outlets& o = outlets();
  std::lock_guard held(o.lock);
  auto it = o.generation.find(&io);
  if (it != o.generation.end() && it->second == generation) asio::post(io, std::forward<F>(f));
}

// One call: whichever comes first on the io thread, the answer or the timeout, replies.
struct Call {
  Call(asio::io_context& io, std::function<void(protocol::Reply)> on_done) : timer(io), done(std::move(on_done)) {}
  asio::steady_timer timer;
  std::function<void(protocol::Reply)> done;
  void reply(protocol::Reply r) {
    if (auto d = std::exchange(done, nullptr)) d(std::move(r));
  }
};

std::string seconds_text(std::chrono::milliseconds ms) {
  const auto count = ms.count();
  return count % 1000 == 0 ? std::to_string(count / 1000) + " s" : std::to_string(count) + " ms";
}

}  // namespace

void run_command(const CommandRegistry& registry, const std::vector<std::string>& words, asio::io_context& io,
                 std::chrono::milliseconds timeout, std::function<void(protocol::Reply)> done) {
  if (words.empty() || !registry.runs_off_thread(words[0])) return done(registry.run(words));
  const std::string& name = words[0];
  if (!take_slot()) {
    return done(protocol::Reply::failure(name + ": " + std::to_string(kMaxCommandsRunning) +
                                         " application commands are still running; try again when they end"));
  }
  auto call = std::make_shared<Call>(io, std::move(done));
  call->timer.expires_after(timeout);
  call->timer.async_wait([call, name, timeout](const boost::system::error_code& ec) {
    if (ec) return;
    call->reply(protocol::Reply::failure(name + ": did not answer within " + seconds_text(timeout) +
                                         " (PERISCOPE_COMMAND_TIMEOUT_MS); it goes on in the host, its answer "
                                         "will be dropped"));
  });
  try {
    start_quiet_thread([&registry, words, call, &io, generation = outlet_of(io)] {
      protocol::Reply reply = registry.run(words);  // the registry lives as long as the process
      give_slot();
      post_if_alive(io, generation, [call, reply = std::move(reply)]() mutable {
        call->timer.cancel();
        call->reply(std::move(reply));
      });
    }).detach();
  } catch (const std::exception& e) {
    give_slot();
    call->timer.cancel();
    call->reply(protocol::Reply::failure(name + ": cannot start a thread for it: " + e.what()));
  }
}

void drop_answers_for(asio::io_context& io) {
  Outlets& o = outlets();
  std::lock_guard held(o.lock);
  o.generation.erase(&io);
}

}  // namespace periscope::manhole
