#pragma once

// Internals of EventStore shared with its subscriptions.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gamebot/eventstore/backend.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/subscription.hpp"
#include "partition_table.hpp"

namespace gamebot::eventstore::detail {

class PersistentGroup;

struct StoreCore {
  StoreCore(std::shared_ptr<Backend> backend_in, StoreOptions options_in)
      : backend(std::move(backend_in)), options(std::move(options_in)) {}

  // Reads a stream or `$all` (start already normalized for the backend).
  ReadResult read(std::string_view stream_id, std::int64_t start, std::size_t count,
                  Direction direction) const;
  // The event_number a new subscriber of `stream_id` starts after.
  StreamVersion current_event_number(std::string_view stream_id) const;
  // The event_number a subscription of `stream_id` starting at `start` starts after.
  StreamVersion start_after(std::string_view stream_id, const StartFrom& start) const;

  std::shared_ptr<Backend> backend;
  StoreOptions options;

  std::mutex groups_mutex;
  std::map<std::pair<std::string, std::string>, std::weak_ptr<PersistentGroup>> groups;
};

class SubscriptionImpl {
 public:
  SubscriptionImpl(std::shared_ptr<StoreCore> core, std::string stream_id, std::string name)
      : core_(std::move(core)), stream_id_(std::move(stream_id)), name_(std::move(name)) {}
  virtual ~SubscriptionImpl() = default;

  virtual std::optional<RecordedEvent> next(std::chrono::milliseconds timeout) = 0;
  virtual void ack(StreamVersion event_number) = 0;
  virtual bool persistent() const noexcept = 0;
  virtual std::optional<StreamVersion> checkpoint() const = 0;
  virtual std::optional<LeaseToken> lease_token() const { return std::nullopt; }
  virtual SubscriptionStats stats() const { return {}; }

  void cancel() noexcept {
    cancelled_.store(true);
    core_->backend->changes().notify();
  }
  const std::string& stream_id() const noexcept { return stream_id_; }
  const std::string& name() const noexcept { return name_; }

 protected:
  std::shared_ptr<StoreCore> core_;
  std::string stream_id_;
  std::string name_;
  std::atomic<bool> cancelled_{false};
};

class TransientSubscription final : public SubscriptionImpl {
 public:
  TransientSubscription(std::shared_ptr<StoreCore> core, std::string stream_id,
                        SubscriptionOptions options);

  std::optional<RecordedEvent> next(std::chrono::milliseconds timeout) override;
  void ack(StreamVersion) override {}
  bool persistent() const noexcept override { return false; }
  std::optional<StreamVersion> checkpoint() const override { return std::nullopt; }

 private:
  // Reads the next page into buffer_; false if there was nothing to read.
  bool fill();

  SubscriptionOptions options_;
  StreamVersion cursor_;
  std::deque<RecordedEvent> buffer_;
};

// One named persistent subscription in one store, shared by its subscribers.
class PersistentGroup {
 public:
  // An event read for the subscribers, with its partition (partition_by) if any.
  struct Queued {
    RecordedEvent event;
    std::string partition;
    std::uint64_t partition_hash = 0;
  };
  struct Consumer {
    explicit Consumer(PartitionTable::MemberId id_in) : id(id_in) {}
    const PartitionTable::MemberId id;  // stable while attached; places partitions
    // Delivered, not acked, in delivery order: an ack covers the events
    // delivered before it, which with partitions (or events handed on by a
    // departing subscriber) need not be the smaller event numbers.
    std::deque<Queued> in_flight;
  };

  PersistentGroup(std::shared_ptr<StoreCore> core, std::string name, std::string stream_id,
                  PersistentSubscriptionOptions options);

  // Under the registry lock: nullptr if the group has closed (make a new one).
  // Throws SubscriptionLimitReached when full.
  Consumer* attach();
  void detach(Consumer* consumer) noexcept;
  // Takes ownership and fixes the starting point now if it can (otherwise the
  // subscribers' next() keeps trying). Throws what the backend throws.
  void start();
  std::optional<RecordedEvent> next(Consumer* consumer, std::chrono::milliseconds timeout,
                                    const std::atomic<bool>& cancelled);
  void ack(Consumer* consumer, StreamVersion event_number);
  std::optional<StreamVersion> checkpoint() const;
  std::optional<LeaseToken> lease_token() const;
  SubscriptionStats stats() const;

 private:
  bool ensure_started();
  // Throws SubscriptionFenced if this group lost its lease (checking it first).
  void require_owner();
  // Drops the lease and everything queued; from now on next() throws and acks do nothing.
  void fence(std::string reason);
  // Writes checkpoint_ with the lease's token; fences the group if refused.
  void store_checkpoint();
  // Reads events after cursor_ into queue_ while it holds fewer than a page.
  void pump();
  // The first queued event at or after `from` that `consumer` may take.
  std::deque<Queued>::iterator find_deliverable(const Consumer& consumer, std::size_t from);
  // Puts a departing subscriber's un-acked events back in the queue, in order.
  void requeue(Consumer& gone) noexcept;
  void advance_checkpoint();
  // When checkpoint_after asks for the un-stored progress to be written; nullopt if never.
  std::optional<std::chrono::steady_clock::time_point> flush_due() const;
  void wake_others() noexcept { core_->backend->changes().notify(); }

  struct Pending {
    StreamVersion event_number;
    bool acked;
  };

  std::shared_ptr<StoreCore> core_;
  const std::string name_;
  const std::string stream_id_;
  const PersistentSubscriptionOptions options_;

  mutable std::mutex mutex_;
  bool closed_ = false;
  std::unique_ptr<SubscriptionLease> lease_;
  bool started_ = false;
  StreamVersion cursor_ = 0;      // last event_number read from the backend
  StreamVersion checkpoint_ = 0;  // contiguous acked prefix
  StreamVersion stored_ = 0;      // last checkpoint written to the backend
  std::size_t unstored_advances_ = 0;
  std::chrono::steady_clock::time_point first_unstored_at_{};  // of the oldest un-stored advance
  std::string fenced_;             // why the lease was lost; empty while this group may deliver
  std::deque<Pending> pending_;    // read, not yet covered by the checkpoint; ascending
  std::deque<Queued> queue_;       // read, not yet delivered; ascending event_number
  bool waiting_for_room_ = false;  // a subscriber found the queue full of others' events
  std::vector<std::unique_ptr<Consumer>> consumers_;
  PartitionTable::MemberId next_member_id_ = 0;
  PartitionTable partitions_;  // with partition_by: who may take which partition
};

class PersistentSubscriber final : public SubscriptionImpl {
 public:
  PersistentSubscriber(std::shared_ptr<StoreCore> core, std::string stream_id, std::string name,
                       std::shared_ptr<PersistentGroup> group, PersistentGroup::Consumer* consumer)
      : SubscriptionImpl(std::move(core), std::move(stream_id), std::move(name)),
        group_(std::move(group)),
        consumer_(consumer) {}
  ~PersistentSubscriber() override { group_->detach(consumer_); }

  std::optional<RecordedEvent> next(std::chrono::milliseconds timeout) override {
    return group_->next(consumer_, timeout, cancelled_);
  }
  void ack(StreamVersion event_number) override { group_->ack(consumer_, event_number); }
  bool persistent() const noexcept override { return true; }
  std::optional<StreamVersion> checkpoint() const override { return group_->checkpoint(); }
  std::optional<LeaseToken> lease_token() const override { return group_->lease_token(); }
  SubscriptionStats stats() const override { return group_->stats(); }

 private:
  std::shared_ptr<PersistentGroup> group_;
  PersistentGroup::Consumer* consumer_;
};

}  // namespace gamebot::eventstore::detail
