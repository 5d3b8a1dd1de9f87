#pragma once

// The in-memory backend (the seed's EventStoreCore): full semantics of the
// Backend contract, plus O(1) reset and whole-store snapshot/restore for
// per-test isolation.
//
// Storage (why it is compact and fast): events are fixed-size records in
// chunks of 1,024; data, metadata, stream ids and type names live in shared
// byte blocks (stream ids and type names once each); a stream is a vector of
// global positions; the event-id index is an open-addressing table of 8-byte
// slots in 64 shards. Reads hand out views into the byte blocks (no copy).
// Memory of hard-deleted events is not reclaimed until reset().
//
// Forking cost: snapshot() and restore() share all chunks, blocks and index
// shards copy-on-write; they copy only the per-stream table, i.e. O(streams +
// events / 1,024 + 64). The first write after a fork copies the chunk (96 KiB),
// index shard and stream it touches, and starts a new byte block.

#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>

#include "gamebot/eventstore/backend.hpp"

namespace gamebot::eventstore {

namespace memory_detail {
struct State;
}

// A frozen copy of a MemoryBackend's whole state (events, streams, snapshots,
// subscription checkpoints). Copyable and cheap to copy; immutable, so it may be
// restored into any number of MemoryBackends, from any thread.
class MemorySnapshot {
 public:
  MemorySnapshot() = default;  // an empty store
  // Number of global positions assigned in the snapshot (holes included).
  GlobalPosition head_position() const noexcept;

 private:
  friend class MemoryBackend;
  explicit MemorySnapshot(std::shared_ptr<const memory_detail::State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<const memory_detail::State> state_;
};

// Thread-safe (a shared_mutex: reads share, writes exclude). Subscription
// ownership (try_acquire_subscription) is per MemoryBackend object and not part
// of its state: reset and restore leave it alone.
class MemoryBackend final : public Backend {
 public:
  MemoryBackend();
  ~MemoryBackend() override;

  std::string_view scheme() const noexcept override { return "memory"; }

  WriteResult append(std::string_view stream_id, ExpectedVersion expected,
                     std::span<const NewEvent> events) override;
  WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                   std::span<const Uuid> event_ids) override;
  WriteResult delete_stream(std::string_view stream_id, ExpectedVersion expected,
                            DeleteMode mode) override;
  ReadResult read_stream(std::string_view stream_id, StreamVersion start, std::size_t count,
                         Direction direction) override;
  ReadResult read_all(GlobalPosition start, std::size_t count, Direction direction) override;
  GlobalPosition head_position() override;
  std::optional<StreamInfo> stream_info(std::string_view stream_id) override;
  StreamListPage list_streams(const StreamListQuery& query) override;
  void record_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> read_snapshot(std::string_view source_id) override;
  bool delete_snapshot(std::string_view source_id) override;
  std::optional<StreamVersion> load_checkpoint(std::string_view subscription,
                                               std::string_view stream_id) override;
  bool store_checkpoint(std::string_view subscription, std::string_view stream_id,
                        StreamVersion event_number, LeaseToken token) override;
  bool delete_checkpoint(std::string_view subscription, std::string_view stream_id) override;
  std::unique_ptr<SubscriptionLease> try_acquire_subscription(std::string_view subscription,
                                                              std::string_view stream_id) override;
  std::vector<StoredSubscription> list_subscriptions() override;

  // Empties the store in O(1) under the write lock (the old state is freed
  // after the lock is released): no events, streams, snapshots or checkpoints;
  // positions restart at 1. Open subscriptions keep their cursors, so close them
  // first (reset is for between tests). Wakes subscribers.
  void reset();

  // The whole state, frozen; see "Forking cost" above.
  MemorySnapshot snapshot();

  // Replaces the whole state with `snapshot`'s; the snapshot stays usable.
  // Same caveat for open subscriptions as reset(). Wakes subscribers.
  void restore(const MemorySnapshot& snapshot);

 private:
  class Lease;
  void release_lease(const std::string& key) noexcept;

  std::shared_mutex mutex_;
  std::unique_ptr<memory_detail::State> state_;

  std::mutex leases_mutex_;
  std::set<std::string, std::less<>> leases_;
  LeaseToken last_lease_token_ = kNoLease;  // under leases_mutex_
};

}  // namespace gamebot::eventstore
