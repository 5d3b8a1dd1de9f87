#include "provision/clone_queue.hpp"

#include <utility>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/errors.hpp"
#include "log.hpp"

namespace gamebot::harness::provision {

CloneQueue::CloneQueue(std::string kind, Prepare prepare, Release release, Tidy tidy)
    : kind_(std::move(kind)),
      prepare_(std::move(prepare)),
      release_(std::move(release)),
      tidy_(std::move(tidy)) {}

CloneQueue::~CloneQueue() {
  stop();
}

void CloneQueue::start(std::size_t ready_target) {
  ready_target_ = ready_target;
  for (std::size_t i = 0; i < ready_target_; ++i)
    preparers_.emplace_back([this] { prepare_loop(); });
  releaser_ = std::thread([this] { release_loop(); });
}

// Keeps ready_target_ ready (each preparer thread one at a time). A failure is handed to the
// next test that waits (as its setup fault), then retried after a pause.
void CloneQueue::prepare_loop() {
  ThreadConnections connections;
  std::unique_lock lock(mutex_);
  for (;;) {
    prepare_cv_.wait(lock, [&] {
      return stopping_ ||
             (ready_.size() + in_flight_ < ready_target_ && used_.size() < kMaxUsedBacklog);
    });
    if (stopping_) return;
    ++in_flight_;
    lock.unlock();
    try {
      Prepared prepared = prepare_(connections);
      lock.lock();
      --in_flight_;
      ready_.push_back(std::move(prepared));
      ready_cv_.notify_all();
    } catch (const std::exception& e) {
      connections = {};
      lock.lock();
      --in_flight_;
      // A full server refused a connection this process may not wait for while it holds
      // others (repo/connection_budget.hpp): not a failure, the next try may find a slot (a
      // test waits in take() meanwhile).
      if (const auto* refused = dynamic_cast<const repo::DatabaseError*>(&e);
          refused != nullptr && refused->sqlstate() == "53300") {
        detail::log().debug("harness: no free server slot for the next isolated {} yet", kind_);
        prepare_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
        continue;
      }
      // A stop cancels the preparer's statements itself: that is no failure to report.
      if (stopping_) {
        detail::log().debug("harness: preparing the next isolated {} stopped: {}", kind_, e.what());
      } else {
        detail::log().warn("harness: preparing the next isolated {} failed: {}", kind_, e.what());
      }
      prepare_failure_ = std::current_exception();
      ready_cv_.notify_all();
      prepare_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
    }
  }
}

// Tidies once, then drops used databases/schemas behind the tests.
void CloneQueue::release_loop() {
  ThreadConnections connections;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
  }
  if (tidy_) {
    try {
      tidy_(connections);
    } catch (const std::exception& e) {
      detail::log().info("harness: tidying before the first {} release failed: {}", kind_,
                         e.what());
      connections = {};
    }
  }
  std::unique_lock lock(mutex_);
  for (;;) {
    release_cv_.wait(lock, [&] { return stopping_ || !used_.empty(); });
    if (stopping_) return;
    Prepared used = std::move(used_.front());
    used_.pop_front();
    prepare_cv_.notify_all();
    lock.unlock();
    used.backend.reset();
    used.repo.reset();
    try {
      release_(used.name, connections);
    } catch (const std::exception& e) {
      // Left for the teardown (databases) or dropped with the run database (schemas).
      detail::log().warn("harness: dropping {} behind the test failed: {}", used.name, e.what());
      connections = {};
    }
    lock.lock();
  }
}

Prepared CloneQueue::take() {
  std::unique_lock lock(mutex_);
  if (!ready_cv_.wait_for(lock, std::chrono::seconds(30),
                          [&] { return stopping_ || !ready_.empty() || prepare_failure_; }))
    throw Error(FaultClass::timeout, "no prepared database/schema within 30 s");
  if (ready_.empty()) {
    if (stopping_) throw Error(FaultClass::internal, "the test environment is shutting down");
    std::rethrow_exception(std::exchange(prepare_failure_, nullptr));
  }
  prepare_failure_ = nullptr;
  Prepared prepared = std::move(ready_.front());
  ready_.pop_front();
  prepare_cv_.notify_all();
  return prepared;
}

void CloneQueue::give_back(Prepared used) {
  {
    std::lock_guard lock(mutex_);
    used_.push_back(std::move(used));
  }
  release_cv_.notify_all();
}

void CloneQueue::request_stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_cv_.notify_all();
  prepare_cv_.notify_all();
  release_cv_.notify_all();
}

std::vector<std::string> CloneQueue::never_taken() {
  std::lock_guard lock(mutex_);
  return never_taken_;
}

void CloneQueue::stop() noexcept {
  request_stop();
  for (auto& preparer : preparers_) preparer.join();
  preparers_.clear();
  if (releaser_.joinable()) releaser_.join();
  std::deque<Prepared> left;
  {
    std::lock_guard lock(mutex_);
    for (const auto& prepared : ready_) never_taken_.push_back(prepared.name);
    left.swap(ready_);
    for (auto& used : used_) left.push_back(std::move(used));
    used_.clear();
  }
}

}  // namespace gamebot::harness::provision
