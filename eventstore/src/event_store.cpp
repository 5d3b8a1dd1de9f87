#include "gamebot/eventstore/event_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/validation.hpp"
#include "store_core.hpp"

namespace gamebot::eventstore {

namespace detail {

ReadResult StoreCore::read(std::string_view stream_id, std::int64_t start, std::size_t count,
                           Direction direction) const {
  if (stream_id == kAllStream) return backend->read_all(start, count, direction);
  return backend->read_stream(stream_id, start, count, direction);
}

StreamVersion StoreCore::current_event_number(std::string_view stream_id) const {
  if (stream_id == kAllStream) return backend->head_position();
  const std::optional<StreamInfo> info = backend->stream_info(stream_id);
  return info ? info->version : 0;
}

StreamVersion StoreCore::start_after(std::string_view stream_id, const StartFrom& start) const {
  switch (start.kind()) {
    case StartFrom::Kind::origin:
      return 0;
    case StartFrom::Kind::current:
      return current_event_number(stream_id);
    case StartFrom::Kind::position:
      return start.value();
  }
  return 0;
}

}  // namespace detail

namespace {

void validate_start_from(const StartFrom& start) {
  if (start.kind() == StartFrom::Kind::position && start.value() < 0) {
    throw InvalidArgument("StartFrom::position must not be negative");
  }
}

void validate_expected(ExpectedVersion expected) {
  if (expected.kind() == ExpectedVersion::Kind::exact && expected.version() < 0) {
    throw InvalidArgument(
        fmt::format("expected version {} is negative (use ExpectedVersion::any/no_stream/"
                    "stream_exists)",
                    expected.version()));
  }
}

std::int64_t forward_start(std::int64_t start) {
  if (start < 0) throw InvalidArgument(fmt::format("forward read start {} is negative", start));
  return start;
}

std::int64_t backward_start(std::int64_t start) {
  if (start == kLatest) return std::numeric_limits<std::int64_t>::max();
  if (start < 0) {
    throw InvalidArgument(fmt::format("backward read start {} is negative (kLatest is -1)", start));
  }
  return start;
}

WriteResult all_is_read_only() {
  WriteResult result;
  result.status = WriteStatus::cannot_append_to_all;
  return result;
}

// Scratch space for the backend's view of a batch, reused per thread so a
// single-event append allocates nothing here.
std::vector<NewEvent>& new_event_scratch() {
  thread_local std::vector<NewEvent> scratch;
  return scratch;
}

}  // namespace

EventStore::EventStore(std::shared_ptr<Backend> backend, StoreOptions options) {
  if (!backend) throw InvalidArgument("EventStore needs a backend");
  if (options.page_size == 0) throw InvalidArgument("StoreOptions::page_size must be at least 1");
  core_ = std::make_shared<detail::StoreCore>(std::move(backend), options);
}

EventStore::EventStore(EventStore&&) noexcept = default;
EventStore& EventStore::operator=(EventStore&&) noexcept = default;
EventStore::~EventStore() = default;

AppendResult EventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                std::span<const EventData> events) {
  validate_stream_id(stream_id);
  validate_expected(expected);
  if (stream_id == kAllStream) return all_is_read_only();

  std::vector<NewEvent>& batch = new_event_scratch();
  batch.clear();
  batch.reserve(events.size());
  std::optional<Timestamp> batch_time;
  for (const EventData& event : events) {
    validate_event_type(event.type);
    if (event.data.size() + event.metadata.size() > kMaxEventPayloadBytes) {
      throw InvalidArgument(fmt::format(
          "event of type '{}' has {} bytes of data and metadata; the "
          "limit is {}",
          event.type, event.data.size() + event.metadata.size(), kMaxEventPayloadBytes));
    }
    if (event.id && event.id->is_nil()) {
      throw InvalidArgument("event id is the nil UUID (leave it empty to have one generated)");
    }
    NewEvent& out = batch.emplace_back();
    out.id = event.id ? *event.id : Uuid::v7();
    out.type = event.type;
    out.data = event.data;
    out.metadata = event.metadata;
    out.causation_id = event.causation_id;
    out.correlation_id = event.correlation_id;
    if (event.created_at) {
      out.created_at = *event.created_at;
    } else {
      if (!batch_time) batch_time = now();
      out.created_at = *batch_time;
    }
  }
  return core_->backend->append(stream_id, expected, batch);
}

AppendResult EventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                std::initializer_list<EventData> events) {
  return append(stream_id, expected, std::span<const EventData>(events.begin(), events.size()));
}

AppendResult EventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                const EventData& event) {
  return append(stream_id, expected, std::span<const EventData>(&event, 1));
}

WriteResult EventStore::link(std::string_view stream_id, ExpectedVersion expected,
                             std::span<const Uuid> event_ids) {
  validate_stream_id(stream_id);
  validate_expected(expected);
  if (stream_id == kAllStream) return all_is_read_only();
  return core_->backend->link(stream_id, expected, event_ids);
}

WriteResult EventStore::link(std::string_view stream_id, ExpectedVersion expected,
                             std::span<const RecordedEvent> events) {
  std::vector<Uuid> ids;
  ids.reserve(events.size());
  for (const RecordedEvent& event : events) ids.push_back(event.event_id);
  return link(stream_id, expected, ids);
}

WriteResult EventStore::delete_stream(std::string_view stream_id, ExpectedVersion expected,
                                      DeleteMode mode) {
  validate_stream_id(stream_id);
  validate_expected(expected);
  if (mode == DeleteMode::hard && !core_->options.allow_hard_delete) {
    throw InvalidArgument(
        fmt::format("hard delete of stream '{}' refused: hard deletes are disabled "
                    "(StoreOptions::allow_hard_delete)",
                    stream_id));
  }
  if (stream_id == kAllStream) return all_is_read_only();
  return core_->backend->delete_stream(stream_id, expected, mode);
}

ReadResult EventStore::read_stream_forward(std::string_view stream_id, StreamVersion start,
                                           std::size_t count) {
  validate_stream_id(stream_id);
  return core_->read(stream_id, forward_start(start), count, Direction::forward);
}

ReadResult EventStore::read_stream_backward(std::string_view stream_id, StreamVersion start,
                                            std::size_t count) {
  validate_stream_id(stream_id);
  return core_->read(stream_id, backward_start(start), count, Direction::backward);
}

ReadResult EventStore::read_all_forward(GlobalPosition start, std::size_t count) {
  return core_->read(kAllStream, forward_start(start), count, Direction::forward);
}

ReadResult EventStore::read_all_backward(GlobalPosition start, std::size_t count) {
  return core_->read(kAllStream, backward_start(start), count, Direction::backward);
}

namespace {

EventRange make_range(std::shared_ptr<detail::StoreCore> core, std::string stream_id,
                      std::int64_t start, Direction direction, std::size_t page_size) {
  if (page_size == 0) page_size = core->options.page_size;
  auto reader = [core = std::move(core), stream_id = std::move(stream_id), direction](
                    std::int64_t from, std::size_t count) {
    return core->read(stream_id, from, count, direction);
  };
  return EventRange(std::move(reader), start, direction, page_size);
}

}  // namespace

EventRange EventStore::stream_forward(std::string_view stream_id, StreamVersion start,
                                      std::size_t page_size) {
  validate_stream_id(stream_id);
  return make_range(core_, std::string(stream_id), forward_start(start), Direction::forward,
                    page_size);
}

EventRange EventStore::stream_backward(std::string_view stream_id, StreamVersion start,
                                       std::size_t page_size) {
  validate_stream_id(stream_id);
  return make_range(core_, std::string(stream_id), backward_start(start), Direction::backward,
                    page_size);
}

EventRange EventStore::all_forward(GlobalPosition start, std::size_t page_size) {
  return make_range(core_, std::string(kAllStream), forward_start(start), Direction::forward,
                    page_size);
}

EventRange EventStore::all_backward(GlobalPosition start, std::size_t page_size) {
  return make_range(core_, std::string(kAllStream), backward_start(start), Direction::backward,
                    page_size);
}

std::optional<StreamInfo> EventStore::stream_info(std::string_view stream_id) {
  validate_stream_id(stream_id);
  if (stream_id == kAllStream) return std::nullopt;
  return core_->backend->stream_info(stream_id);
}

StreamListPage EventStore::list_streams(const StreamListQuery& query) {
  if (query.limit == 0) throw InvalidArgument("StreamListQuery::limit must be at least 1");
  if (query.after_sequence < 0)
    throw InvalidArgument("StreamListQuery::after_sequence is negative");
  return core_->backend->list_streams(query);
}

GlobalPosition EventStore::head_position() {
  return core_->backend->head_position();
}

void EventStore::record_snapshot(Snapshot snapshot) {
  validate_stream_id(snapshot.source_id, "snapshot source id");
  validate_event_type(snapshot.source_type, "snapshot source type");
  if (snapshot.source_version < 0) {
    throw InvalidArgument(
        fmt::format("snapshot source version {} is negative", snapshot.source_version));
  }
  if (snapshot.created_at == Timestamp{}) snapshot.created_at = now();
  core_->backend->record_snapshot(snapshot);
}

std::optional<Snapshot> EventStore::read_snapshot(std::string_view source_id) {
  validate_stream_id(source_id, "snapshot source id");
  return core_->backend->read_snapshot(source_id);
}

bool EventStore::delete_snapshot(std::string_view source_id) {
  validate_stream_id(source_id, "snapshot source id");
  return core_->backend->delete_snapshot(source_id);
}

Subscription EventStore::subscribe(std::string_view stream_id, SubscriptionOptions options) {
  validate_stream_id(stream_id);
  validate_start_from(options.start_from);
  return Subscription(std::make_unique<detail::TransientSubscription>(core_, std::string(stream_id),
                                                                      std::move(options)));
}

Subscription EventStore::subscribe_persistent(std::string_view name, std::string_view stream_id,
                                              PersistentSubscriptionOptions options) {
  validate_stream_id(name, "subscription name");
  validate_stream_id(stream_id);
  if (options.concurrency_limit == 0) {
    throw InvalidArgument("PersistentSubscriptionOptions::concurrency_limit must be at least 1");
  }
  if (options.max_in_flight == 0) {
    throw InvalidArgument("PersistentSubscriptionOptions::max_in_flight must be at least 1");
  }
  if (options.checkpoint_every == 0) {
    throw InvalidArgument("PersistentSubscriptionOptions::checkpoint_every must be at least 1");
  }
  if (options.checkpoint_after.count() < 0) {
    throw InvalidArgument("PersistentSubscriptionOptions::checkpoint_after must not be negative");
  }
  validate_start_from(options.start_from);
  std::lock_guard lock(core_->groups_mutex);
  auto key = std::make_pair(std::string(name), std::string(stream_id));
  std::shared_ptr<detail::PersistentGroup> group = core_->groups[key].lock();
  detail::PersistentGroup::Consumer* consumer = group ? group->attach() : nullptr;
  if (consumer == nullptr) {
    group =
        std::make_shared<detail::PersistentGroup>(core_, key.first, key.second, std::move(options));
    consumer = group->attach();
    core_->groups[key] = group;
  }
  auto subscriber = std::make_unique<detail::PersistentSubscriber>(
      core_, std::move(key.second), std::move(key.first), group, consumer);
  // start_from is evaluated now, not at the first next().
  group->start();
  return Subscription(std::move(subscriber));
}

std::unique_ptr<SubscriptionWorker> EventStore::subscribe(std::string_view stream_id,
                                                          SubscriptionWorker::Handler handler,
                                                          SubscriptionOptions options) {
  return std::make_unique<SubscriptionWorker>(subscribe(stream_id, std::move(options)),
                                              std::move(handler));
}

std::unique_ptr<SubscriptionWorker> EventStore::subscribe_persistent(
    std::string_view name, std::string_view stream_id, SubscriptionWorker::Handler handler,
    PersistentSubscriptionOptions options) {
  return std::make_unique<SubscriptionWorker>(
      subscribe_persistent(name, stream_id, std::move(options)), std::move(handler));
}

bool EventStore::delete_subscription(std::string_view name, std::string_view stream_id) {
  validate_stream_id(name, "subscription name");
  validate_stream_id(stream_id);
  // Held while deleting: an owner could otherwise write the checkpoint back
  // (its token is the newest), and a held one is refused rather than pulled
  // from under its subscriber.
  const std::unique_ptr<SubscriptionLease> lease =
      core_->backend->try_acquire_subscription(name, stream_id);
  if (!lease) {
    throw SubscriptionHeld(fmt::format(
        "persistent subscription '{}' on '{}' is held by a live subscriber (of this store or "
        "another process); stop it, then delete the subscription",
        name, stream_id));
  }
  return core_->backend->delete_checkpoint(name, stream_id);
}

std::vector<SubscriptionInfo> EventStore::list_subscriptions() {
  std::vector<SubscriptionInfo> out;
  std::optional<GlobalPosition> head_of_all;
  for (StoredSubscription& stored : core_->backend->list_subscriptions()) {
    SubscriptionInfo& info = out.emplace_back();
    if (stored.stream_id == kAllStream) {
      if (!head_of_all) head_of_all = core_->backend->head_position();
      info.head = *head_of_all;
    } else if (auto stream = core_->backend->stream_info(stored.stream_id)) {
      info.head = stream->version;
    }
    info.lag = std::max<StreamVersion>(0, info.head - stored.checkpoint);
    info.stored = std::move(stored);
  }
  return out;
}

Backend& EventStore::backend() const noexcept {
  return *core_->backend;
}

const std::shared_ptr<Backend>& EventStore::shared_backend() const noexcept {
  return core_->backend;
}

const StoreOptions& EventStore::options() const noexcept {
  return core_->options;
}

}  // namespace gamebot::eventstore
