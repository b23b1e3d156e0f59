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

// Application commands running now, and where their answers may still go (io contexts not yet
// destroyed: drop_answers_for). Per process and never locked across a fork: a fork child makes
// its own (a parent thread may have held the lock), and the parent's threads are not in it.
struct State {
  pid_t owner = ::getpid();
  std::mutex lock;
  int running = 0;
  std::map<asio::io_context*, uint64_t> generation;  // absent: gone
  uint64_t next = 0;
};
State& state() {
  static std::atomic<State*> current{nullptr};
  State* s = current.load(std::memory_order_acquire);
  if (s && s->owner == ::getpid()) return *s;
  State* fresh = new State;  // leaked, as the one it replaces: detached threads may still use it
  if (current.compare_exchange_strong(s, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *s;
}

bool take_slot() {
  State& s = state();
  std::lock_guard held(s.lock);
  if (s.running >= kMaxCommandsRunning) return false;
  ++s.running;
  return true;
}

void give_slot(State& s) {
  std::lock_guard held(s.lock);
  if (s.running > 0) --s.running;
}

uint64_t outlet_of(asio::io_context& io) {
  State& s = state();
  std::lock_guard held(s.lock);
  auto [it, fresh] = s.generation.emplace(&io, 0);
  if (fresh) it->second = ++s.next;
  return it->second;
}

// Posts `f` to `io` unless it was dropped since `generation` was taken.
template <typename F>
void post_if_alive(State& s, asio::io_context& io, uint64_t generation, F&& f) {
  std::lock_guard held(s.lock);
  auto it = s.generation.find(&io);
  if (it != s.generation.end() && it->second == generation) asio::post(io, std::forward<F>(f));
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
  // The io side owns the call (through its timer's handler); the command's thread holds only a
  // weak reference, so nothing bound to the io context is ever destroyed on it.
  auto call = std::make_shared<Call>(io, std::move(done));
  call->timer.expires_after(timeout);
  call->timer.async_wait([call, name, timeout](const boost::system::error_code& ec) {
    if (ec) return;
    call->reply(protocol::Reply::failure(name + ": did not answer within " + seconds_text(timeout) +
                                         " (PERISCOPE_COMMAND_TIMEOUT_MS); it goes on in the host, its answer "
                                         "will be dropped"));
  });
  try {
    start_quiet_thread([&registry, words, weak = std::weak_ptr<Call>(call), &io, generation = outlet_of(io),
                        &s = state()] {
      protocol::Reply reply = registry.run(words);  // the registry lives as long as the process
      give_slot(s);
      post_if_alive(s, io, generation, [weak, reply = std::move(reply)]() mutable {
        if (auto pending = weak.lock()) {
          pending->timer.cancel();
          pending->reply(std::move(reply));
        }
      });
    }).detach();
  } catch (const std::exception& e) {
    give_slot(state());
    call->timer.cancel();
    call->reply(protocol::Reply::failure(name + ": cannot start a thread for it: " + e.what()));
  }
}

void drop_answers_for(asio::io_context& io) {
  State& s = state();
  std::lock_guard held(s.lock);
  s.generation.erase(&io);
}

}  // namespace periscope::manhole
