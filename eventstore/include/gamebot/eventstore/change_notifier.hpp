#pragma once

// How subscribers learn that something changed in a backend without polling
// hard: a sequence number bumped after every committed write, and a wait for
// it to move.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace gamebot::eventstore {

// Thread-safe. Not copyable. notify() is cheap when nobody waits (two atomic
// operations), so backends may call it after every commit.
class ChangeNotifier {
 public:
  ChangeNotifier() = default;
  ChangeNotifier(const ChangeNotifier&) = delete;
  ChangeNotifier& operator=(const ChangeNotifier&) = delete;

  // The current change sequence. Read it BEFORE looking for new data, then
  // wait_for_change(seen): a change committed in between is never missed.
  std::uint64_t sequence() const noexcept { return sequence_.load(); }

  // Records a change and wakes every waiter. Backends call it after a commit
  // becomes visible to readers (also from a cross-process listener thread);
  // subscriptions call it to wake each other. noexcept.
  void notify() noexcept;

  // Blocks until sequence() != seen or `deadline` passes. Returns true on a
  // change. Spurious early returns are allowed; callers re-check their data.
  bool wait_for_change(std::uint64_t seen, std::chrono::steady_clock::time_point deadline) const;

 private:
  std::atomic<std::uint64_t> sequence_{0};
  mutable std::atomic<int> waiters_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
};

}  // namespace gamebot::eventstore
