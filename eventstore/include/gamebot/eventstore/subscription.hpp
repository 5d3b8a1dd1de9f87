#pragma once

// Subscriptions, built once on top of Backend so every backend behaves the same.
//
// * Transient: no stored state; delivers, in order, once, every event after its
//   start_from (default current: those committed after subscribe() returned),
//   replaying older ones first. How a projection is rebuilt in memory.
// * Persistent: named and durable; its checkpoint (the last acknowledged
//   event_number) is stored in the backend; delivery is at-least-once: a
//   subscriber that restarts (or a store reopened on a durable backend) resumes
//   after the last contiguous acknowledgement; events delivered but not acked
//   come again. An ack covers every event delivered before it to the same
//   subscriber (Elixir EventStore's rule: acking a batch's last event acks the
//   batch). Ownership across stores and processes is a lease with a fencing
//   token (backend.hpp): a subscriber whose lease was lost stops with
//   SubscriptionFenced (errors.hpp) and can no longer move the checkpoint. Up to
//   `concurrency_limit` subscribers may share one name in an EventStore; with `partition_by`, all
//   events of one partition go to one subscriber at a time, in order. Partitions
//   are spread over the current subscribers and rebalance as they join and
//   leave; a partition moves only once its delivered events are acked (see
//   docs/subscriptions.md, "Partitions and rebalancing").
//
// Catch-up and live are one loop: a subscription reads "after my cursor" until
// it is empty, then waits for the backend's change notification (or the poll
// interval) and reads again. There is no switch over, hence no seam where an
// event could be lost or duplicated (the backend's no-skip rule, backend.hpp,
// covers appends racing with the read).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// Filters the events a subscription delivers; empty = all. Called on the
// consuming thread (persistent: under the subscription's lock; keep it cheap).
using EventSelector = std::function<bool(const RecordedEvent&)>;
// Partition key of an event for persistent subscriptions with several subscribers.
using PartitionFunction = std::function<std::string(const RecordedEvent&)>;

// Where a subscription starts: a persistent one the first time (when no
// checkpoint is stored), a transient one every time. Positions are exclusive:
// position(n) delivers events after n.
class StartFrom {
 public:
  static StartFrom origin() noexcept { return StartFrom(Kind::origin, 0); }
  static StartFrom current() noexcept { return StartFrom(Kind::current, 0); }
  // After event_number `n` of the subscribed stream (global position for `$all`).
  static StartFrom position(StreamVersion n) noexcept { return StartFrom(Kind::position, n); }

  enum class Kind { origin, current, position };
  Kind kind() const noexcept { return kind_; }
  StreamVersion value() const noexcept { return value_; }

 private:
  StartFrom(Kind kind, StreamVersion value) noexcept : kind_(kind), value_(value) {}
  Kind kind_;
  StreamVersion value_;
};

struct SubscriptionOptions {
  StartFrom start_from = StartFrom::current();  // origin/position(n): replay, then go live
  EventSelector selector;                       // deliver only matching events (default: all)
};

struct PersistentSubscriptionOptions {
  StartFrom start_from = StartFrom::origin();  // used only when no checkpoint is stored
  EventSelector selector;                      // non-matching events are skipped and count as acked
  PartitionFunction partition_by;              // default: no partitioning
  std::size_t concurrency_limit = 1;           // subscribers allowed on this name in one store
  std::size_t max_in_flight = 1;               // delivered, un-acked events per subscriber
  std::size_t checkpoint_every = 1;            // store the checkpoint after this many advances
                                               // (and always when the last subscriber leaves)
  // Milliseconds; also store it once this long has passed since the first
  // advance not yet stored, so a quiet subscription's progress is saved within
  // a bound (checked while a subscriber acks or waits in next()). 0 = only
  // checkpoint_every decides.
  std::chrono::milliseconds checkpoint_after{1000};
};

// A persistent subscription's state in this store, for diagnostics and tests
// (a snapshot taken under the subscription's lock). Transient: all zero.
struct SubscriptionStats {
  std::size_t subscribers = 0;  // subscribers sharing the name in this store
  std::size_t in_flight = 0;    // delivered, un-acked events over all its subscribers
  std::size_t queued = 0;       // read from the backend, not yet delivered (about a page)
  // With partition_by: partitions with in-flight events, the only ones the
  // subscription keeps an entry for (never more than in_flight; 0 once all are
  // acked, however many distinct keys were seen).
  std::size_t tracked_partitions = 0;
};

namespace detail {
class SubscriptionImpl;
}

// A pull-style subscription handle. Move-only. One thread consumes it at a time
// (next/wait_for/ack); cancel() may be called from any thread. Destroying it
// unsubscribes: a persistent subscriber's un-acked events go to the remaining
// subscribers, or come again on the next subscribe.
class Subscription {
 public:
  Subscription();
  explicit Subscription(std::unique_ptr<detail::SubscriptionImpl> impl);
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();

  // The next event, waiting up to `timeout`; nullopt on timeout or after
  // cancel(). Persistent: waits while this subscriber has max_in_flight
  // un-acked events; throws SubscriptionFenced once its lease was lost. Throws
  // what the backend throws (gamebot::Error).
  std::optional<RecordedEvent> next(std::chrono::milliseconds timeout);

  // Skips events until one satisfies `predicate` (Commanded's wait_for_event);
  // skipped events of a persistent subscription are acknowledged. nullopt if
  // none arrives within `timeout` (measured from the call).
  std::optional<RecordedEvent> wait_for(const std::function<bool(const RecordedEvent&)>& predicate,
                                        std::chrono::milliseconds timeout);

  // Acknowledges a delivered event and every event delivered to this
  // subscriber before it (persistent; a no-op for transient ones). The
  // checkpoint advances over the contiguous acknowledged prefix of the
  // subscription (other subscribers' un-acked events hold it back). Unknown
  // event numbers are ignored, and so is every ack after a fencing.
  void ack(const RecordedEvent& event);
  void ack(StreamVersion event_number);

  // Makes a waiting or later next() return nullopt at once. Thread-safe.
  void cancel() noexcept;

  bool persistent() const noexcept;
  const std::string& stream_id() const noexcept;
  // Persistent: the name; transient: empty.
  const std::string& name() const noexcept;
  // Persistent: the stored checkpoint as this store last wrote or read it
  // (nullopt while another store or process owns the subscription). Transient: nullopt.
  std::optional<StreamVersion> checkpoint() const;
  // Persistent: the fencing token of the lease this store holds for it (nullopt
  // on standby or once fenced). Transient: nullopt.
  std::optional<LeaseToken> lease_token() const;
  // Persistent: a snapshot of the subscription in this store (subscribers,
  // events in flight, tracked partitions). Transient: all zero.
  SubscriptionStats stats() const;

  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  std::unique_ptr<detail::SubscriptionImpl> impl_;
};

// The callback form: a background thread takes events from `subscription` and
// calls `handler` with each; after the handler returns, the event is acked.
// If the handler throws, the worker stops and keeps the exception (the event is
// not acked, so a persistent subscription delivers it again later); so does a
// fenced subscription (error() is SubscriptionFenced).
// Destroying the worker stops and joins the thread (noexcept).
class SubscriptionWorker {
 public:
  using Handler = std::function<void(const RecordedEvent&)>;

  SubscriptionWorker(Subscription subscription, Handler handler);
  SubscriptionWorker(const SubscriptionWorker&) = delete;
  SubscriptionWorker& operator=(const SubscriptionWorker&) = delete;
  ~SubscriptionWorker();

  // Stops the thread and waits for it (after the handler call in progress).
  void stop() noexcept;
  // True until stopped or failed.
  bool running() const noexcept { return running_.load(); }
  // The handler's (or backend's) exception that stopped the worker, if any.
  std::exception_ptr error() const;
  // Events handled successfully so far.
  std::uint64_t handled() const noexcept { return handled_.load(); }

 private:
  void run() noexcept;

  Subscription subscription_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{true};
  std::atomic<std::uint64_t> handled_{0};
  mutable std::mutex error_mutex_;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace gamebot::eventstore
