#include "gamebot/eventstore/change_notifier.hpp"

namespace gamebot::eventstore {

void ChangeNotifier::notify() noexcept {
  sequence_.fetch_add(1);
  // seq_cst on both sides: either the waiter sees the new sequence before it
  // sleeps, or this sees the waiter and wakes it under the mutex.
  if (waiters_.load() > 0) {
    { std::lock_guard lock(mutex_); }
    changed_.notify_all();
  }
}

bool ChangeNotifier::wait_for_change(std::uint64_t seen,
                                     std::chrono::steady_clock::time_point deadline) const {
  waiters_.fetch_add(1);
  bool changed;
  {
    std::unique_lock lock(mutex_);
    changed = changed_.wait_until(lock, deadline, [&] { return sequence_.load() != seen; });
  }
  waiters_.fetch_sub(1);
  return changed;
}

}  // namespace gamebot::eventstore
