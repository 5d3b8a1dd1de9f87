#pragma once

// Group commit for the PostgreSQL backend's appends (leader/follower): a
// caller that finds fewer than max_in_flight commits in flight runs alone at
// once (a lone writer waits for nobody); callers that arrive while
// max_in_flight commits are in flight queue, and when one ends the first of
// them takes the whole queue and runs it as one transaction, so one WAL flush
// serves all of them. A commit that stays in flight longer than `patience` (a
// writer stuck on a row lock held by another transaction) stops holding the
// queue back: the next group starts beside it.
//
// The queue knows nothing of SQL: `solo` and `group` do the work and store
// each request's outcome in the request; an exception thrown by `group` is
// every member's outcome (each caller rethrows it).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <list>
#include <mutex>
#include <span>
#include <vector>

namespace gamebot::eventstore::postgres_detail {

template <class Request>
class CommitGroups {
 public:
  using Clock = std::chrono::steady_clock;

  CommitGroups(std::size_t max_in_flight, Clock::duration patience)
      : max_in_flight_(std::max<std::size_t>(max_in_flight, 1)), patience_(patience) {}

  // Runs `request` alone (solo(request)) or in a group (group(span of Request*),
  // led by one of the callers). Returns once its outcome is stored.
  template <class Solo, class Group>
  void run(Request& request, Solo&& solo, Group&& group) {
    std::unique_lock lock(mutex_);
    if (queue_.empty() && !blocked(Clock::now())) {
      const auto commit = in_flight_.insert(in_flight_.end(), Clock::now());
      lock.unlock();
      const Finish finish{*this, commit};
      solo(request);
      return;
    }
    Slot slot{&request, false, nullptr};
    queue_.push_back(&slot);
    for (;;) {
      if (slot.done) {
        if (slot.error) std::rethrow_exception(slot.error);
        return;
      }
      // Taken by a leader (queue_ swapped out) but not done yet: wait for it.
      const bool first = !queue_.empty() && queue_.front() == &slot;
      if (first && !blocked(Clock::now())) break;
      if (first && !in_flight_.empty()) {
        wake_.wait_until(lock, next_expiry());
      } else {
        wake_.wait(lock);
      }
    }
    std::vector<Slot*> members;
    members.swap(queue_);
    const auto commit = in_flight_.insert(in_flight_.end(), Clock::now());
    lock.unlock();
    std::vector<Request*> requests;
    requests.reserve(members.size());
    for (Slot* member : members) requests.push_back(member->request);
    std::exception_ptr error;
    try {
      group(std::span<Request*>(requests));
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard done_lock(mutex_);
      for (Slot* member : members) {
        member->error = error;
        member->done = true;
      }
      in_flight_.erase(commit);
    }
    wake_.notify_all();
    if (error) std::rethrow_exception(error);
  }

  // Callers queued now (for tests and monitoring).
  std::size_t waiting() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

 private:
  struct Slot {
    Request* request;
    bool done = false;
    std::exception_ptr error;
  };

  // Ends a commit: forgets it and wakes the queue.
  struct Finish {
    CommitGroups& groups;
    typename std::list<Clock::time_point>::iterator commit;
    ~Finish() {
      {
        std::lock_guard lock(groups.mutex_);
        groups.in_flight_.erase(commit);
      }
      groups.wake_.notify_all();
    }
  };

  // max_in_flight commits younger than patience are in flight (caller holds
  // the mutex).
  bool blocked(Clock::time_point now) const {
    std::size_t young = 0;
    for (auto it = in_flight_.rbegin(); it != in_flight_.rend() && *it + patience_ > now; ++it) {
      ++young;
    }
    return young >= max_in_flight_;
  }
  // When the oldest of the young commits stops counting.
  Clock::time_point next_expiry() const {
    auto it = in_flight_.rbegin();
    for (std::size_t i = 1; i < max_in_flight_ && it != in_flight_.rend(); ++i) ++it;
    return (it == in_flight_.rend() ? in_flight_.front() : *it) + patience_;
  }

  const std::size_t max_in_flight_;
  const Clock::duration patience_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Slot*> queue_;                // in arrival order
  std::list<Clock::time_point> in_flight_;  // start times, oldest first
};

}  // namespace gamebot::eventstore::postgres_detail
