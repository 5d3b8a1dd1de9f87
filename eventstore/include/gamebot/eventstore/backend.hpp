#pragma once

// The storage interface every backend implements (memory; SQLite and PostgreSQL
// on gamebot::repo). Only storage primitives live here:
// subscriptions, lazy ranges, validation, id generation and the typed layer are
// built once, on top, by EventStore, so every backend behaves the same.
//
// Contract for implementers (the conformance suite in tests/eventstore/
// conformance checks all of it; no backend may skip a case):
//
// * Input is valid: the EventStore validated stream ids, types, sizes and
//   expected versions, generated missing ids and timestamps, and never passes
//   `$all` to a write. Backends throw gamebot::Error (with its FaultClass) only
//   for faults (connectivity, integrity, ...), never for expected outcomes.
// * Expected version (checked atomically with the write):
//     any            -> writes to a new or existing stream;
//     no_stream      -> stream_exists if the stream exists;
//     stream_exists  -> stream_not_found if it does not;
//     exact(n)       -> wrong_expected_version unless the version is n (0 = absent).
//   A soft-deleted stream answers stream_deleted to every write (append, link,
//   soft delete) whatever the expectation; a hard delete of it is allowed. A
//   hard-deleted stream does not exist: it can be created again from version 0.
//   Every non-ok result carries the stream's actual version.
// * A batch is all-or-nothing: any failure (including a duplicate event id,
//   also inside the batch) leaves no trace. An empty batch only checks the
//   expectation: ok with the current version, creates nothing.
// * Global positions: assigned at commit, strictly increasing, never reused or
//   renumbered; one batch gets consecutive positions. A hard delete leaves
//   holes, which reads and paging step over (a page is filled past holes).
//   NO-SKIP RULE: a reader of `$all` must never see position p+k before every
//   position <= p that will ever commit is visible. In memory, positions are
//   assigned under the write lock. A SQL backend whose sequence values can
//   commit out of order (PostgreSQL) must serialize position assignment with
//   commit (e.g. an exclusive lock on a position row for the transaction) or
//   only expose positions below the lowest in-flight one. Subscriptions rely on
//   this: they read "after my cursor" and never look back.
// * head_position(): the highest position such that every position up to it is
//   committed or a hole. Never decreases (except after a memory reset/restore).
// * Links: add a stream entry referring to an existing event; no new event, no
//   new global position. Reading a stream of links returns the original events
//   (original stream id, version, position) with event_number = the link's
//   version. Linking an event already in the target stream (as an event or a
//   link) is duplicate_event_id; an unknown (or hard-deleted) id is
//   event_not_found.
// * Hard delete removes the stream's own events everywhere (stream, `$all`,
//   links in other streams, the duplicate-id check) and the stream's own links.
// * After every committed write, call notify_changed() so in-process
//   subscribers wake; cross-process backends also call it when they learn of
//   another process's commit (e.g. PostgreSQL LISTEN), from any thread.
// * Thread safety: every member may be called from many threads at once.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/change_notifier.hpp"
#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// An event as the backend receives it: validated, with its id and time set.
// The views are valid only during the call.
struct NewEvent {
  Uuid id;
  std::string_view type;
  std::string_view data;
  std::string_view metadata;
  std::optional<Uuid> causation_id;
  std::optional<Uuid> correlation_id;
  Timestamp created_at{};
};

// Fencing token (LeaseToken, types.hpp): taken when a lease is acquired,
// larger than every token taken before for any subscription of the store.
// kNoLease writes a checkpoint as no owner (tools, tests): it is refused once
// any lease of that subscription was taken.
inline constexpr LeaseToken kNoLease = 0;

// Ownership of a named persistent subscription (see
// Backend::try_acquire_subscription). Destroying it releases the ownership.
//
// A lease can be lost while its holder lives (PostgreSQL: the lease connection
// drops or is terminated and the server frees the advisory lock; SQLite: the
// lock file is removed and another process locks a new one), and a standby then
// takes it with a newer token. The token fences the old holder: every
// checkpoint write carries it and is refused once a newer one was taken.
class SubscriptionLease {
 public:
  virtual ~SubscriptionLease() = default;

  LeaseToken token() const noexcept { return token_; }
  // Set once by the backend, right after it took ownership.
  void set_token(LeaseToken token) noexcept { token_ = token; }

  // True when the backend can tell, cheaply and without a round trip, that the
  // ownership is gone (a closed lease connection, a replaced lock file). False
  // proves nothing: the refused checkpoint write is the authority.
  virtual bool lost() noexcept { return false; }

 private:
  LeaseToken token_ = kNoLease;
};

// Helper for backends that copy row data out of a driver: collects bytes into
// storage that the RecordedEvents of one read share.
//   EventStorageBuilder storage;
//   event.type = storage.keep(column_text);  ...  event.storage = storage.storage();
// Not thread-safe; one builder per read. Views stay valid while any event (or
// the builder) holds storage().
class EventStorageBuilder {
 public:
  EventStorageBuilder();
  // Copies `bytes` into the shared storage and returns a view of the copy.
  std::string_view keep(std::string_view bytes);
  const std::shared_ptr<const void>& storage() const noexcept { return handle_; }

 private:
  struct Chunks;
  Chunks* chunks_;  // owned through handle_
  std::shared_ptr<const void> handle_;
};

class Backend {
 public:
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual ~Backend() = default;

  // URL scheme of the backend ("memory", "sqlite", "postgres").
  virtual std::string_view scheme() const noexcept = 0;

  // ---- writes ---------------------------------------------------------------

  // Appends `events` (possibly empty) to `stream_id` if `expected` holds.
  virtual WriteResult append(std::string_view stream_id, ExpectedVersion expected,
                             std::span<const NewEvent> events) = 0;

  // Appends links to existing events (by id, in order) to `stream_id`.
  virtual WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                           std::span<const Uuid> event_ids) = 0;

  // Soft- or hard-deletes `stream_id` if `expected` holds (stream_not_found if
  // it does not exist). The EventStore has checked that hard deletes are enabled.
  virtual WriteResult delete_stream(std::string_view stream_id, ExpectedVersion expected,
                                    DeleteMode mode) = 0;

  // ---- reads ----------------------------------------------------------------

  // Up to `count` visible events of `stream_id` (never `$all`) with
  // event_number >= start (forward) or <= start (backward; start may exceed the
  // version, meaning "from the newest"), in that direction. Fewer than `count`
  // only when the stream has no more. stream_not_found / stream_deleted with no
  // events when the stream is absent / soft-deleted.
  virtual ReadResult read_stream(std::string_view stream_id, StreamVersion start, std::size_t count,
                                 Direction direction) = 0;

  // Up to `count` events of `$all` with global_position >= start (forward) or
  // <= start (backward), event_number = global_position. Status always ok.
  virtual ReadResult read_all(GlobalPosition start, std::size_t count, Direction direction) = 0;

  // See the contract above.
  virtual GlobalPosition head_position() = 0;

  // Information about a live or soft-deleted stream; nullopt if it does not exist.
  virtual std::optional<StreamInfo> stream_info(std::string_view stream_id) = 0;

  // A page of streams (not `$all`, not hard-deleted) in creation order,
  // oldest first or newest first (query.order), after the query's cursor.
  virtual StreamListPage list_streams(const StreamListQuery& query) = 0;

  // ---- snapshots ------------------------------------------------------------

  // Stores `snapshot`, replacing any earlier one of the same source id.
  virtual void record_snapshot(const Snapshot& snapshot) = 0;
  virtual std::optional<Snapshot> read_snapshot(std::string_view source_id) = 0;
  // True if a snapshot existed.
  virtual bool delete_snapshot(std::string_view source_id) = 0;

  // ---- persistent subscriptions ----------------------------------------------
  // A subscription is keyed by (name, stream id); its checkpoint is the last
  // acknowledged event_number of that stream (global position for `$all`).
  // Checkpoints never move backwards: a store below the stored value keeps the
  // stored one (a reset is delete_checkpoint).

  virtual std::optional<StreamVersion> load_checkpoint(std::string_view subscription,
                                                       std::string_view stream_id) = 0;
  // Stores the checkpoint as the holder of the lease with `token`, atomically
  // with the fencing check: false (nothing written) when the subscription's
  // stored token is newer than `token`; otherwise records `token` with it.
  virtual bool store_checkpoint(std::string_view subscription, std::string_view stream_id,
                                StreamVersion event_number, LeaseToken token) = 0;
  // Forgets the subscription; true if it existed.
  virtual bool delete_checkpoint(std::string_view subscription, std::string_view stream_id) = 0;

  // Ownership of a named subscription across EventStore instances (and
  // processes, for SQL backends: e.g. a PostgreSQL advisory lock held on a
  // dedicated connection). nullptr while someone else owns it; the caller
  // retries later. Memory: exclusive per backend object. A granted lease has a
  // fresh token, already recorded with the subscription if it is stored, so
  // the previous holder's next checkpoint write is refused.
  virtual std::unique_ptr<SubscriptionLease> try_acquire_subscription(
      std::string_view subscription, std::string_view stream_id) = 0;

  // ---- subscription administration ------------------------------------------
  // Every stored subscription (one with a checkpoint: a lease alone stores
  // nothing), ordered by name, then stream id, byte-wise; each says whether a
  // lease on it was held at that moment and, where the backend can tell, by
  // whom (PostgreSQL: the holder's server pid and application_name; SQLite and
  // memory: empty). Held is a snapshot: only try_acquire_subscription decides
  // ownership, so EventStore::delete_subscription holds a lease while it
  // deletes rather than trusting this.
  virtual std::vector<StoredSubscription> list_subscriptions() = 0;

  // ---- change notification -------------------------------------------------

  // Notifier that subscribers of every EventStore on this backend wait on. Virtual so that a
  // decorating backend hands out the notifier of the backend it wraps (whose commits and
  // cross-process listener signal it).
  virtual ChangeNotifier& changes() noexcept { return changes_; }

 protected:
  // Call after every committed write (see the contract above).
  void notify_changed() noexcept { changes_.notify(); }

 private:
  ChangeNotifier changes_;
};

}  // namespace gamebot::eventstore
