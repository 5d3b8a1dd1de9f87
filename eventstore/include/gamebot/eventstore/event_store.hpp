#pragma once

// The event store API: one class over any Backend (open.hpp opens one from a URL).

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/backend.hpp"
#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/event_range.hpp"
#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/subscription.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

struct StoreOptions {
  bool allow_hard_delete = false;  // hard deletes are opt-in (Elixir's enable_hard_deletes)
  std::size_t page_size = 1000;    // page of lazy ranges and subscription reads (at least 1)
  // Subscriptions re-read at least this often even without a change
  // notification (a safety net for cross-process backends).
  std::chrono::milliseconds poll_interval{500};
};

namespace detail {
struct StoreCore;
}

// Thread-safe: many threads may append, read and subscribe at once. Move-only
// handle; subscriptions keep the store's internals (and the backend) alive, so
// they may outlive the handle.
//
// Errors: invalid input (stream id, event type, sizes, negative versions, a
// disallowed hard delete) throws InvalidArgument (FaultClass::configuration)
// before the backend is called; backend faults propagate as gamebot::Error
// with their fault class. Expected outcomes are WriteResult / ReadResult values.
class EventStore {
 public:
  // A store over `backend` (shared: several stores on one backend model
  // several processes; they share the data and wake each other's subscribers).
  explicit EventStore(std::shared_ptr<Backend> backend, StoreOptions options = {});
  EventStore(EventStore&&) noexcept;
  EventStore& operator=(EventStore&&) noexcept;
  ~EventStore();

  // ---- writes ---------------------------------------------------------------

  // Appends the batch atomically. Missing ids get UUIDv7s, missing created_at
  // the current time (one value for the batch).
  AppendResult append(std::string_view stream_id, ExpectedVersion expected,
                      std::span<const EventData> events);
  AppendResult append(std::string_view stream_id, ExpectedVersion expected,
                      std::initializer_list<EventData> events);
  AppendResult append(std::string_view stream_id, ExpectedVersion expected, const EventData& event);

  // Links existing events (by id, in order) into `stream_id`; see backend.hpp.
  WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                   std::span<const Uuid> event_ids);
  WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                   std::span<const RecordedEvent> events);

  // Soft delete by default; hard delete throws InvalidArgument unless
  // StoreOptions::allow_hard_delete.
  WriteResult delete_stream(std::string_view stream_id, ExpectedVersion expected,
                            DeleteMode mode = DeleteMode::soft);

  // ---- reads ----------------------------------------------------------------
  // `$all` as stream id reads `$all`. Forward starts are inclusive (0 and 1
  // both mean the first); backward starts are inclusive, kLatest = the newest.

  ReadResult read_stream_forward(std::string_view stream_id, StreamVersion start = 0,
                                 std::size_t count = kDefaultReadCount);
  ReadResult read_stream_backward(std::string_view stream_id, StreamVersion start = kLatest,
                                  std::size_t count = kDefaultReadCount);
  ReadResult read_all_forward(GlobalPosition start = 0, std::size_t count = kDefaultReadCount);
  ReadResult read_all_backward(GlobalPosition start = kLatest,
                               std::size_t count = kDefaultReadCount);

  // Lazy ranges paging by StoreOptions::page_size (or `page_size` if nonzero).
  EventRange stream_forward(std::string_view stream_id, StreamVersion start = 0,
                            std::size_t page_size = 0);
  EventRange stream_backward(std::string_view stream_id, StreamVersion start = kLatest,
                             std::size_t page_size = 0);
  EventRange all_forward(GlobalPosition start = 0, std::size_t page_size = 0);
  EventRange all_backward(GlobalPosition start = kLatest, std::size_t page_size = 0);

  std::optional<StreamInfo> stream_info(std::string_view stream_id);
  StreamListPage list_streams(const StreamListQuery& query = {});
  GlobalPosition head_position();

  // ---- snapshots ------------------------------------------------------------

  // created_at left at the epoch is set to now().
  void record_snapshot(Snapshot snapshot);
  std::optional<Snapshot> read_snapshot(std::string_view source_id);
  bool delete_snapshot(std::string_view source_id);

  // ---- subscriptions (subscription.hpp) --------------------------------------

  // Transient subscription to `stream_id` or `$all`: events committed after
  // this call returns.
  Subscription subscribe(std::string_view stream_id, SubscriptionOptions options = {});

  // Persistent subscription `name` on `stream_id` or `$all`. A second call with
  // the same (name, stream) in this store adds a subscriber to the same
  // subscription (the first caller's options apply) up to concurrency_limit,
  // then throws SubscriptionLimitReached. If another store (or process) owns the
  // name, the subscriber waits (next() times out) until the owner lets go.
  // The starting point (stored checkpoint, else start_from) is fixed during
  // this call when the subscription can be owned, else when ownership comes.
  Subscription subscribe_persistent(std::string_view name, std::string_view stream_id,
                                    PersistentSubscriptionOptions options = {});

  // Callback forms: a SubscriptionWorker running `handler` on its own thread.
  std::unique_ptr<SubscriptionWorker> subscribe(std::string_view stream_id,
                                                SubscriptionWorker::Handler handler,
                                                SubscriptionOptions options = {});
  std::unique_ptr<SubscriptionWorker> subscribe_persistent(
      std::string_view name, std::string_view stream_id, SubscriptionWorker::Handler handler,
      PersistentSubscriptionOptions options = {});

  // Forgets a persistent subscription's checkpoint (the next subscribe starts
  // from its start_from again); true if one was stored. Refused with
  // SubscriptionHeld (nothing deleted) while a lease on it is held, by a
  // subscriber of this store or of any other: the deletion itself holds the
  // lease, so no owner can write the checkpoint back meanwhile.
  bool delete_subscription(std::string_view name, std::string_view stream_id);

  // Every stored persistent subscription (Backend::list_subscriptions) with
  // its head and lag as of the listing; several reads, not one snapshot.
  std::vector<SubscriptionInfo> list_subscriptions();

  // ---- plumbing -------------------------------------------------------------

  Backend& backend() const noexcept;
  const std::shared_ptr<Backend>& shared_backend() const noexcept;
  const StoreOptions& options() const noexcept;

 private:
  std::shared_ptr<detail::StoreCore> core_;
};

}  // namespace gamebot::eventstore
