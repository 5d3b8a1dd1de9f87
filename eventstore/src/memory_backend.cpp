#include "gamebot/eventstore/memory_backend.hpp"

#include <algorithm>
#include <unordered_set>

#include "memory_state.hpp"

namespace gamebot::eventstore {

using memory_detail::ByteArena;
using memory_detail::EventRecord;
using memory_detail::NameRef;
using memory_detail::State;
using memory_detail::StreamState;

GlobalPosition MemorySnapshot::head_position() const noexcept {
  return state_ ? static_cast<GlobalPosition>(state_->events.size()) : 0;
}

namespace {

std::optional<WriteStatus> violated(ExpectedVersion expected, bool exists,
                                    StreamVersion current) noexcept {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::any:
      return std::nullopt;
    case ExpectedVersion::Kind::no_stream:
      if (exists) return WriteStatus::stream_exists;
      return std::nullopt;
    case ExpectedVersion::Kind::stream_exists:
      if (!exists) return WriteStatus::stream_not_found;
      return std::nullopt;
    case ExpectedVersion::Kind::exact:
      if (expected.version() != current) return WriteStatus::wrong_expected_version;
      return std::nullopt;
  }
  return std::nullopt;
}

WriteResult outcome(WriteStatus status, StreamVersion version) {
  WriteResult result;
  result.status = status;
  result.version = version;
  return result;
}

std::string_view name_of(const State& state, const NameRef& name) noexcept {
  return state.arena.view(name.ref, 0, name.size);
}

// The stream index compares names through this, next to the stream's state.
auto name_at(const State& state) {
  return
      [&state](std::uint32_t index) -> std::string_view { return state.streams[index].get().text; };
}

std::optional<std::uint32_t> find_stream(const State& state, std::string_view stream_id) {
  return state.stream_names.get().find(stream_id, name_at(state));
}

StreamVersion version_of(const State& state, std::uint32_t stream) noexcept {
  return static_cast<StreamVersion>(state.streams[stream].get().entries.size());
}

std::uint32_t create_stream(State& state, std::string_view stream_id) {
  if (state.streams.size() >= UINT32_MAX) {
    throw Error(FaultClass::internal, "memory backend stream table is full");
  }
  StreamState stream;
  stream.name.ref = state.arena.write(stream_id);
  stream.name.size = static_cast<std::uint32_t>(stream_id.size());
  stream.text = std::string(stream_id);
  stream.created_at = now();
  const auto index = static_cast<std::uint32_t>(state.streams.size());
  state.streams.emplace_back(std::move(stream));
  try {
    state.stream_names.mut().insert(stream_id, index, name_at(state));
  } catch (...) {
    state.streams.pop_back();
    throw;
  }
  return index;
}

void remove_created_stream(State& state, std::uint32_t index) noexcept {
  // The index was written (so owned) when the stream was created: no copy here.
  state.stream_names.mut().erase(state.streams[index].get().text, name_at(state));
  state.streams.pop_back();
}

std::uint32_t intern_type(State& state, std::string_view type) {
  const auto& names = state.type_names.get();
  if (auto it = names.find(type); it != names.end()) return it->second;
  NameRef ref{state.arena.write(type), static_cast<std::uint32_t>(type.size())};
  const auto index = static_cast<std::uint32_t>(state.types.get().size());
  state.types.mut().push_back(ref);
  state.type_names.mut().emplace(name_of(state, ref), index);
  return index;
}

// Grows `entries` geometrically for `more` elements (a plain reserve(size + n)
// per single-event append would copy the vector every time).
void reserve_more(std::vector<GlobalPosition>& entries, std::size_t more) {
  const std::size_t needed = entries.size() + more;
  if (needed > entries.capacity()) entries.reserve(std::max(needed, entries.capacity() * 2));
}

// Builds RecordedEvents that view the arena, and the storage that keeps the
// blocks they view alive.
class PageBuilder {
 public:
  explicit PageBuilder(const State& state) : state_(state) {}

  void add(std::vector<RecordedEvent>& out, const EventRecord& record, StreamVersion event_number,
           GlobalPosition position) {
    const State& s = state_;
    const NameRef& stream_name = s.streams[record.stream].get().name;
    const NameRef& type_name = s.types.get()[record.type];
    use(stream_name.ref.block, last_name_block_);
    use(type_name.ref.block, last_type_block_);
    if (record.data_size + record.metadata_size > 0) use(record.payload.block, last_data_block_);

    RecordedEvent& event = out.emplace_back();
    event.event_number = event_number;
    event.event_id = record.id;
    event.stream_id = name_of(s, stream_name);
    event.stream_version = record.stream_version;
    event.global_position = position;
    event.type = name_of(s, type_name);
    event.data = s.arena.view(record.payload, 0, record.data_size);
    event.metadata = s.arena.view(record.payload, record.data_size, record.metadata_size);
    if (record.flags & EventRecord::kHasCausation) event.causation_id = record.causation_id;
    if (record.flags & EventRecord::kHasCorrelation) event.correlation_id = record.correlation_id;
    event.created_at = Timestamp(std::chrono::microseconds(record.created_at_us));
  }

  void finish(std::vector<RecordedEvent>& events) {
    if (events.empty()) return;
    std::sort(blocks_.begin(), blocks_.end());
    blocks_.erase(std::unique(blocks_.begin(), blocks_.end()), blocks_.end());
    auto storage = std::make_shared<std::vector<std::shared_ptr<ByteArena::Block>>>();
    storage->reserve(blocks_.size());
    for (std::uint32_t block : blocks_) storage->push_back(state_.arena.block(block));
    std::shared_ptr<const void> shared = std::move(storage);
    for (RecordedEvent& event : events) event.storage = shared;
  }

 private:
  void use(std::uint32_t block, std::int64_t& last) {
    if (block != last) {
      blocks_.push_back(block);
      last = block;
    }
  }

  const State& state_;
  std::vector<std::uint32_t> blocks_;
  std::int64_t last_name_block_ = -1;
  std::int64_t last_type_block_ = -1;
  std::int64_t last_data_block_ = -1;
};

std::string checkpoint_key_text(std::string_view subscription, std::string_view stream_id) {
  std::string key(subscription);
  key.push_back('\0');
  key.append(stream_id);
  return key;
}

}  // namespace

class MemoryBackend::Lease final : public SubscriptionLease {
 public:
  Lease(MemoryBackend* backend, std::string key) : backend_(backend), key_(std::move(key)) {}
  ~Lease() override { backend_->release_lease(key_); }

 private:
  MemoryBackend* backend_;
  std::string key_;
};

MemoryBackend::MemoryBackend() : state_(std::make_unique<State>()) {}

MemoryBackend::~MemoryBackend() = default;

WriteResult MemoryBackend::append(std::string_view stream_id, ExpectedVersion expected,
                                  std::span<const NewEvent> events) {
  std::unique_lock lock(mutex_);
  State& s = *state_;
  const std::optional<std::uint32_t> found = find_stream(s, stream_id);
  const StreamVersion current = found ? version_of(s, *found) : 0;
  if (found && s.streams[*found].get().deleted_at) {
    return outcome(WriteStatus::stream_deleted, current);
  }
  if (auto status = violated(expected, found.has_value(), current)) {
    return outcome(*status, current);
  }
  if (events.empty()) return outcome(WriteStatus::ok, current);

  const std::size_t first_index = s.events.size();
  const GlobalPosition first_position = static_cast<GlobalPosition>(first_index) + 1;
  // Ids of this batch are indexed before their records exist.
  auto id_at = [&s, &events, first_position](GlobalPosition position) -> const Uuid& {
    if (position >= first_position &&
        static_cast<std::size_t>(position - first_position) < events.size() &&
        static_cast<std::size_t>(position) > s.events.size()) {
      return events[static_cast<std::size_t>(position - first_position)].id;
    }
    return s.events[static_cast<std::size_t>(position - 1)].id;
  };

  std::size_t indexed = 0;
  std::optional<std::uint32_t> created;
  std::optional<std::size_t> entries_before;  // set once the stream's entries may change
  auto roll_back = [&]() noexcept {
    for (std::size_t i = 0; i < indexed; ++i) s.ids.erase(events[i].id, id_at);
    s.events.truncate(first_index);
    if (created) {
      remove_created_stream(s, *created);
    } else if (entries_before) {
      s.streams[*found].mut().entries.resize(*entries_before);
    }
  };

  try {
    for (; indexed < events.size(); ++indexed) {
      if (!s.ids.insert(events[indexed].id, first_position + static_cast<GlobalPosition>(indexed),
                        id_at)) {
        const Uuid duplicate = events[indexed].id;
        roll_back();
        WriteResult result = outcome(WriteStatus::duplicate_event_id, current);
        result.event_id = duplicate;
        return result;
      }
    }
    std::uint32_t stream_index;
    if (found) {
      stream_index = *found;
    } else {
      stream_index = create_stream(s, stream_id);
      created = stream_index;
    }
    StreamState& stream = s.streams[stream_index].mut();
    entries_before = stream.entries.size();
    reserve_more(stream.entries, events.size());

    std::string_view last_type;
    std::uint32_t last_type_index = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const NewEvent& e = events[i];
      if (i == 0 || e.type != last_type) {
        last_type_index = intern_type(s, e.type);
        last_type = e.type;
      }
      EventRecord record;
      record.id = e.id;
      record.causation_id = e.causation_id.value_or(Uuid{});
      record.correlation_id = e.correlation_id.value_or(Uuid{});
      record.created_at_us = e.created_at.time_since_epoch().count();
      record.stream_version = current + static_cast<StreamVersion>(i) + 1;
      record.stream = stream_index;
      record.type = last_type_index;
      record.payload = s.arena.write(e.data, e.metadata);
      record.data_size = static_cast<std::uint32_t>(e.data.size());
      record.metadata_size = static_cast<std::uint32_t>(e.metadata.size());
      record.flags =
          static_cast<std::uint8_t>((e.causation_id ? EventRecord::kHasCausation : 0) |
                                    (e.correlation_id ? EventRecord::kHasCorrelation : 0));
      s.events.push_back(record);
      stream.entries.push_back(first_position + static_cast<GlobalPosition>(i));
    }
  } catch (...) {
    roll_back();
    throw;
  }

  WriteResult result =
      outcome(WriteStatus::ok, current + static_cast<StreamVersion>(events.size()));
  result.first_position = first_position;
  result.last_position = first_position + static_cast<GlobalPosition>(events.size()) - 1;
  lock.unlock();
  notify_changed();
  return result;
}

WriteResult MemoryBackend::link(std::string_view stream_id, ExpectedVersion expected,
                                std::span<const Uuid> event_ids) {
  std::unique_lock lock(mutex_);
  State& s = *state_;
  const std::optional<std::uint32_t> found = find_stream(s, stream_id);
  const StreamVersion current = found ? version_of(s, *found) : 0;
  if (found && s.streams[*found].get().deleted_at) {
    return outcome(WriteStatus::stream_deleted, current);
  }
  if (auto status = violated(expected, found.has_value(), current)) {
    return outcome(*status, current);
  }
  if (event_ids.empty()) return outcome(WriteStatus::ok, current);

  auto id_at = [&s](GlobalPosition position) -> const Uuid& {
    return s.events[static_cast<std::size_t>(position - 1)].id;
  };
  std::unordered_set<GlobalPosition> present;
  if (found) {
    const auto& entries = s.streams[*found].get().entries;
    present.reserve(entries.size() + event_ids.size());
    for (GlobalPosition position : entries) {
      if (!(s.events[static_cast<std::size_t>(position - 1)].flags & EventRecord::kDeleted)) {
        present.insert(position);
      }
    }
  }
  std::vector<GlobalPosition> positions;
  positions.reserve(event_ids.size());
  for (const Uuid& id : event_ids) {
    const std::optional<GlobalPosition> position = s.ids.find(id, id_at);
    if (!position) {
      WriteResult result = outcome(WriteStatus::event_not_found, current);
      result.event_id = id;
      return result;
    }
    if (!present.insert(*position).second) {
      WriteResult result = outcome(WriteStatus::duplicate_event_id, current);
      result.event_id = id;
      return result;
    }
    positions.push_back(*position);
  }

  std::uint32_t stream_index;
  bool created = false;
  if (found) {
    stream_index = *found;
  } else {
    stream_index = create_stream(s, stream_id);
    created = true;
  }
  try {
    StreamState& stream = s.streams[stream_index].mut();
    reserve_more(stream.entries, positions.size());
    stream.entries.insert(stream.entries.end(), positions.begin(), positions.end());
  } catch (...) {
    if (created) remove_created_stream(s, stream_index);
    throw;
  }
  const StreamVersion version = current + static_cast<StreamVersion>(positions.size());
  lock.unlock();
  notify_changed();
  return outcome(WriteStatus::ok, version);
}

WriteResult MemoryBackend::delete_stream(std::string_view stream_id, ExpectedVersion expected,
                                         DeleteMode mode) {
  std::unique_lock lock(mutex_);
  State& s = *state_;
  const std::optional<std::uint32_t> found = find_stream(s, stream_id);
  if (!found) return outcome(WriteStatus::stream_not_found, 0);
  const StreamVersion current = version_of(s, *found);
  const bool soft_deleted = s.streams[*found].get().deleted_at.has_value();
  if (mode == DeleteMode::soft && soft_deleted) {
    return outcome(WriteStatus::stream_deleted, current);
  }
  if (auto status = violated(expected, true, current)) return outcome(*status, current);

  StreamState& stream = s.streams[*found].mut();
  if (mode == DeleteMode::soft) {
    stream.deleted_at = now();
  } else {
    auto id_at = [&s](GlobalPosition position) -> const Uuid& {
      return s.events[static_cast<std::size_t>(position - 1)].id;
    };
    for (GlobalPosition position : stream.entries) {
      const auto index = static_cast<std::size_t>(position - 1);
      const EventRecord& record = s.events[index];
      if (record.stream != *found || (record.flags & EventRecord::kDeleted)) continue;
      s.ids.erase(record.id, id_at);
      s.events.mutable_at(index).flags |= EventRecord::kDeleted;
    }
    s.stream_names.mut().erase(stream.text, name_at(s));
    stream.hard_deleted = true;
    std::vector<GlobalPosition>().swap(stream.entries);
  }
  lock.unlock();
  notify_changed();
  return outcome(WriteStatus::ok, current);
}

ReadResult MemoryBackend::read_stream(std::string_view stream_id, StreamVersion start,
                                      std::size_t count, Direction direction) {
  ReadResult result;
  std::shared_lock lock(mutex_);
  const State& s = *state_;
  const std::optional<std::uint32_t> found = find_stream(s, stream_id);
  if (!found) {
    result.status = ReadStatus::stream_not_found;
    return result;
  }
  const StreamState& stream = s.streams[*found].get();
  if (stream.deleted_at) {
    result.status = ReadStatus::stream_deleted;
    return result;
  }
  const auto& entries = stream.entries;
  const auto size = static_cast<StreamVersion>(entries.size());
  PageBuilder page(s);
  result.events.reserve(std::min<std::size_t>(count, entries.size()));
  if (direction == Direction::forward) {
    for (StreamVersion n = std::max<StreamVersion>(start, 1);
         n <= size && result.events.size() < count; ++n) {
      const GlobalPosition position = entries[static_cast<std::size_t>(n - 1)];
      const EventRecord& record = s.events[static_cast<std::size_t>(position - 1)];
      if (record.flags & EventRecord::kDeleted) continue;
      page.add(result.events, record, n, position);
    }
  } else {
    for (StreamVersion n = std::min(start, size); n >= 1 && result.events.size() < count; --n) {
      const GlobalPosition position = entries[static_cast<std::size_t>(n - 1)];
      const EventRecord& record = s.events[static_cast<std::size_t>(position - 1)];
      if (record.flags & EventRecord::kDeleted) continue;
      page.add(result.events, record, n, position);
    }
  }
  page.finish(result.events);
  return result;
}

ReadResult MemoryBackend::read_all(GlobalPosition start, std::size_t count, Direction direction) {
  ReadResult result;
  std::shared_lock lock(mutex_);
  const State& s = *state_;
  const auto head = static_cast<GlobalPosition>(s.events.size());
  PageBuilder page(s);
  result.events.reserve(std::min<std::size_t>(count, s.events.size()));
  if (direction == Direction::forward) {
    for (GlobalPosition p = std::max<GlobalPosition>(start, 1);
         p <= head && result.events.size() < count; ++p) {
      const EventRecord& record = s.events[static_cast<std::size_t>(p - 1)];
      if (record.flags & EventRecord::kDeleted) continue;
      page.add(result.events, record, p, p);
    }
  } else {
    for (GlobalPosition p = std::min(start, head); p >= 1 && result.events.size() < count; --p) {
      const EventRecord& record = s.events[static_cast<std::size_t>(p - 1)];
      if (record.flags & EventRecord::kDeleted) continue;
      page.add(result.events, record, p, p);
    }
  }
  page.finish(result.events);
  return result;
}

GlobalPosition MemoryBackend::head_position() {
  std::shared_lock lock(mutex_);
  return static_cast<GlobalPosition>(state_->events.size());
}

std::optional<StreamInfo> MemoryBackend::stream_info(std::string_view stream_id) {
  std::shared_lock lock(mutex_);
  const State& s = *state_;
  const std::optional<std::uint32_t> found = find_stream(s, stream_id);
  if (!found) return std::nullopt;
  const StreamState& stream = s.streams[*found].get();
  StreamInfo info;
  info.stream_id = std::string(name_of(s, stream.name));
  info.version = static_cast<StreamVersion>(stream.entries.size());
  info.created_at = stream.created_at;
  info.deleted_at = stream.deleted_at;
  info.sequence = static_cast<std::int64_t>(*found) + 1;
  return info;
}

StreamListPage MemoryBackend::list_streams(const StreamListQuery& query) {
  StreamListPage page;
  const std::size_t limit = std::max<std::size_t>(query.limit, 1);
  std::shared_lock lock(mutex_);
  const State& s = *state_;
  const auto after = static_cast<std::size_t>(std::max<std::int64_t>(query.after_sequence, 0));
  const bool forward = query.order == Direction::forward;
  // Indexes in listing order: [after, size) forward, [0, after - 1) newest first backward.
  const std::size_t count =
      forward ? s.streams.size() - std::min(after, s.streams.size())
              : (after == 0 ? s.streams.size() : std::min(after - 1, s.streams.size()));
  for (std::size_t step = 0; step < count; ++step) {
    const std::size_t i = forward ? after + step : count - 1 - step;
    const StreamState& stream = s.streams[i].get();
    if (stream.hard_deleted) continue;
    const std::string_view name = name_of(s, stream.name);
    if (!name.starts_with(query.prefix)) continue;
    if (page.streams.size() == limit) {
      page.next_after = page.streams.back().sequence;
      break;
    }
    StreamInfo& info = page.streams.emplace_back();
    info.stream_id = std::string(name);
    info.version = static_cast<StreamVersion>(stream.entries.size());
    info.created_at = stream.created_at;
    info.deleted_at = stream.deleted_at;
    info.sequence = static_cast<std::int64_t>(i) + 1;
  }
  return page;
}

void MemoryBackend::record_snapshot(const Snapshot& snapshot) {
  std::unique_lock lock(mutex_);
  state_->snapshots.mut().insert_or_assign(snapshot.source_id, snapshot);
}

std::optional<Snapshot> MemoryBackend::read_snapshot(std::string_view source_id) {
  std::shared_lock lock(mutex_);
  const auto& snapshots = state_->snapshots.get();
  auto it = snapshots.find(source_id);
  if (it == snapshots.end()) return std::nullopt;
  return it->second;
}

bool MemoryBackend::delete_snapshot(std::string_view source_id) {
  std::unique_lock lock(mutex_);
  if (state_->snapshots.get().find(source_id) == state_->snapshots.get().end()) return false;
  auto& snapshots = state_->snapshots.mut();
  snapshots.erase(snapshots.find(source_id));
  return true;
}

std::optional<StreamVersion> MemoryBackend::load_checkpoint(std::string_view subscription,
                                                            std::string_view stream_id) {
  std::shared_lock lock(mutex_);
  const auto& checkpoints = state_->checkpoints.get();
  auto it = checkpoints.find({std::string(subscription), std::string(stream_id)});
  if (it == checkpoints.end()) return std::nullopt;
  return it->second.event_number;
}

bool MemoryBackend::store_checkpoint(std::string_view subscription, std::string_view stream_id,
                                     StreamVersion event_number, LeaseToken token) {
  std::unique_lock lock(mutex_);
  const std::pair<std::string, std::string> key{std::string(subscription), std::string(stream_id)};
  const auto& checkpoints = state_->checkpoints.get();
  if (auto it = checkpoints.find(key); it != checkpoints.end()) {
    if (it->second.token > token) return false;
    event_number = std::max(event_number, it->second.event_number);
  }
  state_->checkpoints.mut().insert_or_assign(key,
                                             memory_detail::StoredCheckpoint{event_number, token});
  return true;
}

bool MemoryBackend::delete_checkpoint(std::string_view subscription, std::string_view stream_id) {
  std::unique_lock lock(mutex_);
  const std::pair<std::string, std::string> key{std::string(subscription), std::string(stream_id)};
  if (!state_->checkpoints.get().contains(key)) return false;
  state_->checkpoints.mut().erase(key);
  return true;
}

std::unique_ptr<SubscriptionLease> MemoryBackend::try_acquire_subscription(
    std::string_view subscription, std::string_view stream_id) {
  std::string key = checkpoint_key_text(subscription, stream_id);
  std::unique_ptr<Lease> lease;
  {
    std::lock_guard lock(leases_mutex_);
    if (!leases_.insert(key).second) return nullptr;
    lease = std::make_unique<Lease>(this, std::move(key));
    lease->set_token(++last_lease_token_);
  }
  std::unique_lock lock(mutex_);
  const std::pair<std::string, std::string> stored{std::string(subscription),
                                                   std::string(stream_id)};
  if (state_->checkpoints.get().contains(stored)) {
    state_->checkpoints.mut().at(stored).token = lease->token();
  }
  return lease;
}

std::vector<StoredSubscription> MemoryBackend::list_subscriptions() {
  std::vector<StoredSubscription> out;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [key, stored] : state_->checkpoints.get()) {
      StoredSubscription& row = out.emplace_back();
      row.name = key.first;
      row.stream_id = key.second;
      row.checkpoint = stored.event_number;
      row.lease_token = stored.token;
    }
  }
  std::lock_guard lock(leases_mutex_);
  for (StoredSubscription& row : out) {
    row.held = leases_.contains(checkpoint_key_text(row.name, row.stream_id));
  }
  return out;
}

void MemoryBackend::release_lease(const std::string& key) noexcept {
  {
    std::lock_guard lock(leases_mutex_);
    leases_.erase(key);
  }
  notify_changed();
}

void MemoryBackend::reset() {
  auto fresh = std::make_unique<State>();
  {
    std::unique_lock lock(mutex_);
    state_.swap(fresh);
  }
  fresh.reset();  // the old state, freed outside the lock
  notify_changed();
}

MemorySnapshot MemoryBackend::snapshot() {
  std::unique_lock lock(mutex_);
  auto copy = std::make_shared<State>(*state_);
  state_->unown();
  copy->unown();
  return MemorySnapshot(std::move(copy));
}

void MemoryBackend::restore(const MemorySnapshot& snapshot) {
  auto copy =
      snapshot.state_ ? std::make_unique<State>(*snapshot.state_) : std::make_unique<State>();
  copy->unown();
  {
    std::unique_lock lock(mutex_);
    state_.swap(copy);
  }
  copy.reset();
  notify_changed();
}

}  // namespace gamebot::eventstore
