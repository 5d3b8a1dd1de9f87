#include "gamebot/eventstore/subscription.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "gamebot/eventstore/errors.hpp"
#include "store_core.hpp"

namespace gamebot::eventstore {

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point wait_until(Clock::time_point deadline, std::chrono::milliseconds poll) {
  return std::min(deadline, Clock::now() + poll);
}

}  // namespace

// ---- transient ---------------------------------------------------------------

TransientSubscription::TransientSubscription(std::shared_ptr<StoreCore> core, std::string stream_id,
                                             SubscriptionOptions options)
    : SubscriptionImpl(std::move(core), std::move(stream_id), {}),
      options_(std::move(options)),
      cursor_(core_->start_after(stream_id_, options_.start_from)) {}

bool TransientSubscription::fill() {
  ReadResult page =
      core_->read(stream_id_, cursor_ + 1, core_->options.page_size, Direction::forward);
  if (page.events.empty()) return false;
  for (RecordedEvent& event : page.events) {
    cursor_ = event.event_number;
    if (!options_.selector || options_.selector(event)) buffer_.push_back(std::move(event));
  }
  return true;
}

std::optional<RecordedEvent> TransientSubscription::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ChangeNotifier& changes = core_->backend->changes();
  for (;;) {
    if (cancelled_.load()) return std::nullopt;
    if (!buffer_.empty()) {
      RecordedEvent event = std::move(buffer_.front());
      buffer_.pop_front();
      return event;
    }
    const std::uint64_t seen = changes.sequence();
    if (fill()) continue;
    if (Clock::now() >= deadline) return std::nullopt;
    changes.wait_for_change(seen, wait_until(deadline, core_->options.poll_interval));
  }
}

// ---- persistent ----------------------------------------------------------------

PersistentGroup::PersistentGroup(std::shared_ptr<StoreCore> core, std::string name,
                                 std::string stream_id, PersistentSubscriptionOptions options)
    : core_(std::move(core)),
      name_(std::move(name)),
      stream_id_(std::move(stream_id)),
      options_(std::move(options)) {}

PersistentGroup::Consumer* PersistentGroup::attach() {
  std::lock_guard lock(mutex_);
  if (closed_) return nullptr;
  if (consumers_.size() >= options_.concurrency_limit) {
    throw SubscriptionLimitReached(fmt::format(
        "persistent subscription '{}' on '{}' already has {} subscriber(s) (concurrency_limit)",
        name_, stream_id_, consumers_.size()));
  }
  consumers_.push_back(std::make_unique<Consumer>(next_member_id_++));
  // A newcomer owns its share of the partitions at once (old keys too); each
  // moves to it once the events in flight elsewhere are acked.
  partitions_.add_member(consumers_.back()->id);
  return consumers_.back().get();
}

void PersistentGroup::detach(Consumer* consumer) noexcept {
  std::unique_lock lock(mutex_);
  auto it = std::find_if(consumers_.begin(), consumers_.end(),
                         [&](const auto& c) { return c.get() == consumer; });
  if (it == consumers_.end()) return;
  std::unique_ptr<Consumer> gone = std::move(*it);
  consumers_.erase(it);
  partitions_.remove_member(gone->id);

  if (consumers_.empty()) {
    // The last subscriber: write the checkpoint (losing it only means
    // redelivery) and let another store or process take the subscription.
    closed_ = true;
    if (started_ && fenced_.empty() && checkpoint_ != stored_) {
      try {
        store_checkpoint();
      } catch (...) {
        // At-least-once: events after the last stored checkpoint come again.
      }
    }
    lease_.reset();
    return;
  }
  requeue(*gone);
  lock.unlock();
  wake_others();
}

void PersistentGroup::requeue(Consumer& gone) noexcept {
  for (Queued& queued : gone.in_flight) {
    const StreamVersion number = queued.event.event_number;
    // Unpinned: the partition's owner among the others takes it from here.
    if (options_.partition_by) partitions_.released(queued.partition, queued.partition_hash);
    try {
      // The queue stays sorted by event_number, so each partition's events
      // come again in their order, before its later ones.
      auto at = std::upper_bound(
          queue_.begin(), queue_.end(), number,
          [](StreamVersion n, const Queued& other) { return n < other.event.event_number; });
      queue_.insert(at, std::move(queued));
    } catch (...) {
      // Memory ran out: the event stays un-acked, so the checkpoint cannot
      // pass it and a restart delivers it again.
    }
  }
  gone.in_flight.clear();
}

void PersistentGroup::start() {
  std::lock_guard lock(mutex_);
  ensure_started();
}

bool PersistentGroup::ensure_started() {
  if (started_) return true;
  Backend& backend = *core_->backend;
  if (!lease_) {
    lease_ = backend.try_acquire_subscription(name_, stream_id_);
    if (!lease_) return false;
  }
  std::optional<StreamVersion> stored = backend.load_checkpoint(name_, stream_id_);
  if (!stored) {
    // Stored at once, so a restart before the first ack resumes from the same place.
    checkpoint_ = core_->start_after(stream_id_, options_.start_from);
    store_checkpoint();
    require_owner();
    stored = checkpoint_;
  }
  cursor_ = checkpoint_ = stored_ = *stored;
  started_ = true;
  return true;
}

void PersistentGroup::require_owner() {
  if (fenced_.empty() && lease_ && lease_->lost()) {
    fence("its lease was lost (the lease connection or lock file is gone)");
  }
  if (!fenced_.empty()) {
    throw SubscriptionFenced(fmt::format("persistent subscription '{}' on '{}' is fenced: {}",
                                         name_, stream_id_, fenced_));
  }
}

void PersistentGroup::fence(std::string reason) {
  fenced_ = std::move(reason);
  closed_ = true;  // a new subscribe in this store makes a new group, on standby
  lease_.reset();
  queue_.clear();
  for (auto& consumer : consumers_) consumer->in_flight.clear();
  partitions_.clear();
  pending_.clear();
  wake_others();
}

void PersistentGroup::store_checkpoint() {
  if (!core_->backend->store_checkpoint(name_, stream_id_, checkpoint_, lease_->token())) {
    fence(fmt::format("a newer lease than token {} owns it; its checkpoint write was refused",
                      lease_->token()));
    return;
  }
  stored_ = checkpoint_;
  unstored_advances_ = 0;
}

void PersistentGroup::pump() {
  const std::size_t page_size = core_->options.page_size;
  while (queue_.size() < page_size) {
    ReadResult page = core_->read(stream_id_, cursor_ + 1, page_size, Direction::forward);
    for (RecordedEvent& event : page.events) {
      // The selector or partition_by may throw: then nothing about this event
      // has been recorded yet, and the next pump reads it again.
      const StreamVersion number = event.event_number;
      const bool selected = !options_.selector || options_.selector(event);
      if (selected) {
        Queued queued;
        if (options_.partition_by) {
          queued.partition = options_.partition_by(event);
          queued.partition_hash = PartitionTable::hash_key(queued.partition);
        }
        queued.event = std::move(event);
        queue_.push_back(std::move(queued));
      }
      pending_.push_back(Pending{number, !selected});
      cursor_ = number;
    }
    if (page.events.size() < page_size) break;
  }
  advance_checkpoint();
}

std::deque<PersistentGroup::Queued>::iterator PersistentGroup::find_deliverable(
    const Consumer& consumer, std::size_t from) {
  const auto begin = queue_.begin() + static_cast<std::ptrdiff_t>(std::min(from, queue_.size()));
  if (!options_.partition_by) return begin;
  return std::find_if(begin, queue_.end(), [&](const Queued& queued) {
    return partitions_.may_deliver(consumer.id, queued.partition, queued.partition_hash);
  });
}

std::optional<RecordedEvent> PersistentGroup::next(Consumer* consumer,
                                                   std::chrono::milliseconds timeout,
                                                   const std::atomic<bool>& cancelled) {
  const auto deadline = Clock::now() + timeout;
  ChangeNotifier& changes = core_->backend->changes();
  for (;;) {
    if (cancelled.load()) return std::nullopt;
    const std::uint64_t seen = changes.sequence();
    std::optional<Clock::time_point> flush_at;
    {
      std::lock_guard lock(mutex_);
      require_owner();
      if (ensure_started()) advance_checkpoint();  // a due checkpoint_after flush
      require_owner();
      flush_at = flush_due();
      if (started_ && consumer->in_flight.size() < options_.max_in_flight) {
        auto found = find_deliverable(*consumer, 0);
        if (found == queue_.end()) {
          const std::size_t before = queue_.size();
          pump();
          require_owner();
          // Read events may belong to others' partitions (or to anyone).
          if (queue_.size() > before && consumers_.size() > 1) wake_others();
          found = find_deliverable(*consumer, before);
          // A full queue of others' partitions: whoever makes room wakes us.
          if (found == queue_.end() && queue_.size() >= core_->options.page_size) {
            waiting_for_room_ = true;
          }
        }
        if (found != queue_.end()) {
          Queued queued = std::move(*found);
          queue_.erase(found);
          if (waiting_for_room_ && queue_.size() < core_->options.page_size) {
            waiting_for_room_ = false;
            wake_others();
          }
          if (options_.partition_by) partitions_.delivered(consumer->id, queued.partition);
          RecordedEvent event = queued.event;
          consumer->in_flight.push_back(std::move(queued));
          return event;
        }
      }
    }
    if (Clock::now() >= deadline) return std::nullopt;
    Clock::time_point until = wait_until(deadline, core_->options.poll_interval);
    if (flush_at) until = std::min(until, *flush_at);
    changes.wait_for_change(seen, until);
  }
}

void PersistentGroup::ack(Consumer* consumer, StreamVersion event_number) {
  std::unique_lock lock(mutex_);
  if (!fenced_.empty()) return;
  auto acked = std::find_if(
      consumer->in_flight.begin(), consumer->in_flight.end(),
      [&](const Queued& delivered) { return delivered.event.event_number == event_number; });
  if (acked == consumer->in_flight.end()) return;
  // The ack covers every event delivered to this subscriber up to it, of
  // every partition it holds.
  bool moved = false;
  const auto end = std::next(acked);
  for (auto delivered = consumer->in_flight.begin(); delivered != end; ++delivered) {
    const StreamVersion number = delivered->event.event_number;
    auto it = std::lower_bound(
        pending_.begin(), pending_.end(), number,
        [](const Pending& pending, StreamVersion n) { return pending.event_number < n; });
    if (it != pending_.end() && it->event_number == number) it->acked = true;
    if (options_.partition_by) {
      moved |= partitions_.released(delivered->partition, delivered->partition_hash);
    }
  }
  consumer->in_flight.erase(consumer->in_flight.begin(), end);
  advance_checkpoint();
  lock.unlock();
  // A drained partition's new owner may be waiting for it.
  if (moved) wake_others();
}

void PersistentGroup::advance_checkpoint() {
  while (!pending_.empty() && pending_.front().acked) {
    if (unstored_advances_ == 0) first_unstored_at_ = Clock::now();
    checkpoint_ = pending_.front().event_number;
    pending_.pop_front();
    ++unstored_advances_;
  }
  if (checkpoint_ == stored_) return;
  const std::optional<Clock::time_point> due = flush_due();
  if (unstored_advances_ >= options_.checkpoint_every || (due && Clock::now() >= *due)) {
    store_checkpoint();
  }
}

std::optional<Clock::time_point> PersistentGroup::flush_due() const {
  if (!started_ || !fenced_.empty() || checkpoint_ == stored_ ||
      options_.checkpoint_after.count() == 0) {
    return std::nullopt;
  }
  return first_unstored_at_ + options_.checkpoint_after;
}

std::optional<StreamVersion> PersistentGroup::checkpoint() const {
  std::lock_guard lock(mutex_);
  if (!started_) return std::nullopt;
  return stored_;
}

std::optional<LeaseToken> PersistentGroup::lease_token() const {
  std::lock_guard lock(mutex_);
  if (!lease_) return std::nullopt;
  return lease_->token();
}

SubscriptionStats PersistentGroup::stats() const {
  std::lock_guard lock(mutex_);
  SubscriptionStats stats;
  stats.subscribers = consumers_.size();
  for (const auto& consumer : consumers_) stats.in_flight += consumer->in_flight.size();
  stats.queued = queue_.size();
  stats.tracked_partitions = partitions_.pinned();
  return stats;
}

}  // namespace detail

// ---- Subscription handle ---------------------------------------------------------

Subscription::Subscription() = default;
Subscription::Subscription(std::unique_ptr<detail::SubscriptionImpl> impl)
    : impl_(std::move(impl)) {}
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&&) noexcept = default;
Subscription::~Subscription() = default;

namespace {

detail::SubscriptionImpl& checked(const std::unique_ptr<detail::SubscriptionImpl>& impl) {
  if (!impl) throw InvalidArgument("use of an empty (moved-from) Subscription");
  return *impl;
}

}  // namespace

std::optional<RecordedEvent> Subscription::next(std::chrono::milliseconds timeout) {
  return checked(impl_).next(timeout);
}

std::optional<RecordedEvent> Subscription::wait_for(
    const std::function<bool(const RecordedEvent&)>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<RecordedEvent> event =
        checked(impl_).next(std::max(left, std::chrono::milliseconds(0)));
    if (!event) return std::nullopt;
    if (predicate(*event)) return event;
    impl_->ack(event->event_number);
  }
}

void Subscription::ack(const RecordedEvent& event) {
  checked(impl_).ack(event.event_number);
}
void Subscription::ack(StreamVersion event_number) {
  checked(impl_).ack(event_number);
}

void Subscription::cancel() noexcept {
  if (impl_) impl_->cancel();
}

bool Subscription::persistent() const noexcept {
  return impl_ && impl_->persistent();
}

const std::string& Subscription::stream_id() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->stream_id() : empty;
}

const std::string& Subscription::name() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->name() : empty;
}

std::optional<StreamVersion> Subscription::checkpoint() const {
  return impl_ ? impl_->checkpoint() : std::nullopt;
}

std::optional<LeaseToken> Subscription::lease_token() const {
  return impl_ ? impl_->lease_token() : std::nullopt;
}

SubscriptionStats Subscription::stats() const {
  return impl_ ? impl_->stats() : SubscriptionStats{};
}

// ---- SubscriptionWorker ------------------------------------------------------------

SubscriptionWorker::SubscriptionWorker(Subscription subscription, Handler handler)
    : subscription_(std::move(subscription)), handler_(std::move(handler)) {
  if (!subscription_) throw InvalidArgument("SubscriptionWorker needs a subscription");
  if (!handler_) throw InvalidArgument("SubscriptionWorker needs a handler");
  thread_ = std::thread([this] { run(); });
}

SubscriptionWorker::~SubscriptionWorker() {
  stop();
}

void SubscriptionWorker::stop() noexcept {
  stop_.store(true);
  subscription_.cancel();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::exception_ptr SubscriptionWorker::error() const {
  std::lock_guard lock(error_mutex_);
  return error_;
}

void SubscriptionWorker::run() noexcept {
  while (!stop_.load()) {
    try {
      std::optional<RecordedEvent> event = subscription_.next(std::chrono::seconds(1));
      if (!event) continue;
      handler_(*event);
      handled_.fetch_add(1);
      subscription_.ack(*event);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      error_ = std::current_exception();
      break;
    }
  }
  running_.store(false);
}

}  // namespace gamebot::eventstore
