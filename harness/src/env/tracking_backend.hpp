#pragma once

// A Backend decorator that remembers which persistent subscriptions a test
// holds, so that one still subscribed when the test ends is reported by name.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gamebot/eventstore/backend.hpp"

namespace gamebot::harness::env {

class TrackingBackend final : public eventstore::Backend {
 public:
  explicit TrackingBackend(std::shared_ptr<eventstore::Backend> inner) : inner_(std::move(inner)) {}

  std::string_view scheme() const noexcept override { return inner_->scheme(); }
  // Subscriptions wait on the wrapped backend's notifier: its commits (and, for the SQL
  // backends, other processes' commits) signal it; this wrapper's own would never be.
  eventstore::ChangeNotifier& changes() noexcept override { return inner_->changes(); }
  eventstore::WriteResult append(std::string_view stream_id, eventstore::ExpectedVersion expected,
                                 std::span<const eventstore::NewEvent> events) override {
    return inner_->append(stream_id, expected, events);
  }
  eventstore::WriteResult link(std::string_view stream_id, eventstore::ExpectedVersion expected,
                               std::span<const Uuid> event_ids) override {
    return inner_->link(stream_id, expected, event_ids);
  }
  eventstore::WriteResult delete_stream(std::string_view stream_id,
                                        eventstore::ExpectedVersion expected,
                                        eventstore::DeleteMode mode) override {
    return inner_->delete_stream(stream_id, expected, mode);
  }
  eventstore::ReadResult read_stream(std::string_view stream_id, eventstore::StreamVersion start,
                                     std::size_t count, eventstore::Direction direction) override {
    return inner_->read_stream(stream_id, start, count, direction);
  }
  eventstore::ReadResult read_all(eventstore::GlobalPosition start, std::size_t count,
                                  eventstore::Direction direction) override {
    return inner_->read_all(start, count, direction);
  }
  eventstore::GlobalPosition head_position() override { return inner_->head_position(); }
  std::optional<eventstore::StreamInfo> stream_info(std::string_view stream_id) override {
    return inner_->stream_info(stream_id);
  }
  eventstore::StreamListPage list_streams(const eventstore::StreamListQuery& query) override {
    return inner_->list_streams(query);
  }
  void record_snapshot(const eventstore::Snapshot& snapshot) override {
    inner_->record_snapshot(snapshot);
  }
  std::optional<eventstore::Snapshot> read_snapshot(std::string_view source_id) override {
    return inner_->read_snapshot(source_id);
  }
  bool delete_snapshot(std::string_view source_id) override {
    return inner_->delete_snapshot(source_id);
  }
  std::optional<eventstore::StreamVersion> load_checkpoint(std::string_view subscription,
                                                           std::string_view stream_id) override {
    return inner_->load_checkpoint(subscription, stream_id);
  }
  bool store_checkpoint(std::string_view subscription, std::string_view stream_id,
                        eventstore::StreamVersion event_number,
                        eventstore::LeaseToken token) override {
    return inner_->store_checkpoint(subscription, stream_id, event_number, token);
  }
  bool delete_checkpoint(std::string_view subscription, std::string_view stream_id) override {
    return inner_->delete_checkpoint(subscription, stream_id);
  }
  std::vector<eventstore::StoredSubscription> list_subscriptions() override {
    return inner_->list_subscriptions();
  }
  std::unique_ptr<eventstore::SubscriptionLease> try_acquire_subscription(
      std::string_view subscription, std::string_view stream_id) override {
    auto lease = inner_->try_acquire_subscription(subscription, stream_id);
    if (!lease) return lease;
    auto key = std::make_shared<Held>(Held{std::string(subscription), std::string(stream_id)});
    {
      std::lock_guard lock(mutex_);
      held_.push_back(key);
    }
    return std::make_unique<TrackedLease>(std::move(lease), key);
  }

  struct Held {
    std::string subscription;
    std::string stream_id;
  };

  // Persistent subscriptions whose ownership is still held.
  std::vector<Held> held() {
    std::lock_guard lock(mutex_);
    std::vector<Held> out;
    for (const auto& weak : held_)
      if (auto held = weak.lock()) out.push_back(*held);
    return out;
  }

 private:
  class TrackedLease final : public eventstore::SubscriptionLease {
   public:
    TrackedLease(std::unique_ptr<eventstore::SubscriptionLease> inner, std::shared_ptr<Held> key)
        : inner_(std::move(inner)), key_(std::move(key)) {
      set_token(inner_->token());
    }
    bool lost() noexcept override { return inner_->lost(); }

   private:
    std::unique_ptr<eventstore::SubscriptionLease> inner_;
    std::shared_ptr<Held> key_;
  };

  std::shared_ptr<eventstore::Backend> inner_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<Held>> held_;
};

}  // namespace gamebot::harness::env
