#pragma once

// Internal storage of MemoryBackend (see memory_backend.hpp for the design):
// copy-on-write containers whose fork copies only pointers, so snapshot and
// restore of a whole store are cheap.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore::memory_detail {

// A value shared between forks until one of them writes to it. A fork copies
// the pointer and both sides give up ownership (unown); the next mut() on
// either side copies the value first.
template <typename T>
class Cow {
 public:
  Cow() : value_(std::make_shared<T>()), owned_(true) {}
  explicit Cow(T value) : value_(std::make_shared<T>(std::move(value))), owned_(true) {}

  const T& get() const noexcept { return *value_; }
  T& mut() {
    if (!owned_) {
      value_ = std::make_shared<T>(*value_);
      owned_ = true;
    }
    return *value_;
  }
  void unown() noexcept { owned_ = false; }

 private:
  std::shared_ptr<T> value_;
  bool owned_;
};

// An append-mostly array of trivially copyable records in chunks of N,
// copy-on-write per chunk.
template <typename T, std::size_t N>
class ChunkedLog {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const T& operator[](std::size_t i) const noexcept { return slots_[i / N].chunk->items[i % N]; }
  const T& back() const noexcept { return (*this)[size_ - 1]; }

  T& mutable_at(std::size_t i) {
    Slot& slot = slots_[i / N];
    own(slot);
    return slot.chunk->items[i % N];
  }

  void push_back(const T& value) {
    const std::size_t c = size_ / N;
    if (c == slots_.size()) {
      slots_.push_back(Slot{std::make_shared<Chunk>(), true});
    } else {
      own(slots_[c]);
    }
    slots_[c].chunk->items[size_ % N] = value;
    ++size_;
  }

  // Forgets the records from n on (chunks stay allocated). noexcept.
  void truncate(std::size_t n) noexcept { size_ = std::min(size_, n); }

  void unown() noexcept {
    for (Slot& slot : slots_) slot.owned = false;
  }

 private:
  struct Chunk {
    T items[N];
  };
  struct Slot {
    std::shared_ptr<Chunk> chunk;
    bool owned;
  };
  static void own(Slot& slot) {
    if (!slot.owned) {
      slot.chunk = std::make_shared<Chunk>(*slot.chunk);
      slot.owned = true;
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

// Immutable-once-written byte blocks. Bytes are never changed after they are
// written, so blocks are shared freely between forks and handed to readers as
// the storage of their RecordedEvents. Only the tail block receives writes,
// and only while this arena has not been forked since the block was started.
class ByteArena {
 public:
  struct Block {
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
  };
  struct Ref {
    std::uint32_t block = 0;
    std::uint32_t offset = 0;
  };

  // Copies `first` and then `second` contiguously; returns where they start.
  Ref write(std::string_view first, std::string_view second = {}) {
    const std::size_t size = first.size() + second.size();
    if (!tail_writable_ || blocks_.back()->capacity - used_ < size) start_block(size);
    char* destination = blocks_.back()->bytes.get() + used_;
    if (!first.empty()) std::memcpy(destination, first.data(), first.size());
    if (!second.empty()) std::memcpy(destination + first.size(), second.data(), second.size());
    Ref ref{static_cast<std::uint32_t>(blocks_.size() - 1), static_cast<std::uint32_t>(used_)};
    used_ += size;
    return ref;
  }

  std::string_view view(Ref ref, std::size_t offset, std::size_t size) const noexcept {
    if (size == 0) return {};
    return {blocks_[ref.block]->bytes.get() + ref.offset + offset, size};
  }

  const std::shared_ptr<Block>& block(std::uint32_t index) const noexcept { return blocks_[index]; }

  // After a fork: neither side may write into the shared tail block again.
  void seal() noexcept { tail_writable_ = false; }

 private:
  static constexpr std::size_t kFirstBlockBytes = 16 * 1024;
  static constexpr std::size_t kMaxBlockBytes = 1024 * 1024;

  void start_block(std::size_t at_least) {
    if (blocks_.size() >= UINT32_MAX) throw Error(FaultClass::internal, "memory arena is full");
    std::size_t size =
        blocks_.empty() ? kFirstBlockBytes : std::min(blocks_.back()->capacity * 2, kMaxBlockBytes);
    size = std::max(size, at_least);
    auto block = std::make_shared<Block>();
    block->bytes = std::make_unique_for_overwrite<char[]>(size);
    block->capacity = size;
    blocks_.push_back(std::move(block));
    used_ = 0;
    tail_writable_ = true;
  }

  std::vector<std::shared_ptr<Block>> blocks_;
  std::size_t used_ = 0;
  bool tail_writable_ = false;
};

// Event id -> global position for ids in no particular order. Open addressing
// with linear probing in 64 copy-on-write shards; a slot is 8 bytes: the low 24
// bits of the id's hash (to rehash without touching the records, and to filter
// probes) and a 40-bit position. Full ids are compared through `id_at(position)`.
class IdHashTable {
 public:
  static std::uint64_t hash(const Uuid& id) noexcept {
    std::uint64_t a;
    std::uint64_t b;
    std::memcpy(&a, id.bytes().data(), 8);
    std::memcpy(&b, id.bytes().data() + 8, 8);
    std::uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ ((b * 0xC2B2AE3D27D4EB4FULL) >> 7 | b << 57);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
  }

  template <typename IdAt>
  std::optional<GlobalPosition> find(const Uuid& id, IdAt&& id_at) const {
    const std::uint64_t h = hash(id);
    const Table* table = shards_[h >> (64 - kShardBits)].table.get();
    if (table == nullptr || table->slots.empty()) return std::nullopt;
    const std::size_t mask = table->slots.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = table->slots[i];
      if (slot == 0) return std::nullopt;
      if ((slot >> kPositionBits) == (h & kTagMask) && id_at(position_of(slot)) == id) {
        return position_of(slot);
      }
    }
  }

  // Adds id -> position; false (and no change) if the id is present.
  template <typename IdAt>
  bool insert(const Uuid& id, GlobalPosition position, IdAt&& id_at) {
    if (position <= 0 || static_cast<std::uint64_t>(position) > kPositionMask) {
      throw Error(FaultClass::internal, "global position out of the memory index's range");
    }
    const std::uint64_t h = hash(id);
    Table& table = writable(shards_[h >> (64 - kShardBits)]);
    if ((table.count + 1) * 10 > table.slots.size() * 7) grow(table, id_at);
    const std::size_t mask = table.slots.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = table.slots[i];
      if (slot == 0) {
        table.slots[i] = ((h & kTagMask) << kPositionBits) | static_cast<std::uint64_t>(position);
        ++table.count;
        return true;
      }
      if ((slot >> kPositionBits) == (h & kTagMask) && id_at(position_of(slot)) == id) return false;
    }
  }

  // Removes `id`; true if it was present.
  template <typename IdAt>
  bool erase(const Uuid& id, IdAt&& id_at) {
    const std::uint64_t h = hash(id);
    Shard& shard = shards_[h >> (64 - kShardBits)];
    if (shard.table == nullptr || shard.table->slots.empty()) return false;
    Table& table = writable(shard);
    const std::size_t mask = table.slots.size() - 1;
    std::size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
      const std::uint64_t slot = table.slots[i];
      if (slot == 0) return false;
      if ((slot >> kPositionBits) == (h & kTagMask) && id_at(position_of(slot)) == id) break;
    }
    // Backward-shift deletion keeps every probe chain unbroken.
    for (std::size_t j = i;;) {
      j = (j + 1) & mask;
      const std::uint64_t slot = table.slots[j];
      if (slot == 0) break;
      const std::size_t home = home_of(slot, mask, id_at);
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      table.slots[i] = slot;
      i = j;
    }
    table.slots[i] = 0;
    --table.count;
    return true;
  }

  void unown() noexcept {
    for (Shard& shard : shards_) shard.owned = false;
  }

 private:
  static constexpr unsigned kShardBits = 6;
  static constexpr unsigned kPositionBits = 40;
  static constexpr std::uint64_t kPositionMask = (std::uint64_t{1} << kPositionBits) - 1;
  static constexpr std::uint64_t kTagMask = (std::uint64_t{1} << (64 - kPositionBits)) - 1;

  struct Table {
    std::vector<std::uint64_t> slots;
    std::size_t count = 0;
  };
  struct Shard {
    std::shared_ptr<Table> table;
    bool owned = false;
  };

  static GlobalPosition position_of(std::uint64_t slot) noexcept {
    return static_cast<GlobalPosition>(slot & kPositionMask);
  }

  template <typename IdAt>
  static std::size_t home_of(std::uint64_t slot, std::size_t mask, IdAt& id_at) {
    if (mask <= kTagMask) return (slot >> kPositionBits) & mask;
    return hash(id_at(position_of(slot))) & mask;
  }

  static Table& writable(Shard& shard) {
    if (shard.table == nullptr) {
      shard.table = std::make_shared<Table>();
      shard.owned = true;
    } else if (!shard.owned) {
      shard.table = std::make_shared<Table>(*shard.table);
      shard.owned = true;
    }
    return *shard.table;
  }

  template <typename IdAt>
  static void grow(Table& table, IdAt& id_at) {
    std::vector<std::uint64_t> slots(table.slots.empty() ? 64 : table.slots.size() * 2, 0);
    const std::size_t mask = slots.size() - 1;
    for (std::uint64_t slot : table.slots) {
      if (slot == 0) continue;
      std::size_t i = home_of(slot, mask, id_at);
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = slot;
    }
    table.slots = std::move(slots);
  }

  std::array<Shard, std::size_t{1} << kShardBits> shards_{};
};

// Event id -> global position. UUIDv7 ids (the default) arrive in increasing
// order, so they go to an append-only sorted run whose end is always in cache;
// a hash table, consulted first, takes every id that arrives out of order.
// Without this split every insert is a cache miss into a table of 16+ MB.
class IdIndex {
 public:
  template <typename IdAt>
  std::optional<GlobalPosition> find(const Uuid& id, IdAt&& id_at) const {
    if (auto position = hashed_.find(id, id_at)) return position;
    if (auto index = run_index(id); index && run_[*index].position != 0) {
      return run_[*index].position;
    }
    return std::nullopt;
  }

  // Adds id -> position; false (and no change) if the id is present.
  template <typename IdAt>
  bool insert(const Uuid& id, GlobalPosition position, IdAt&& id_at) {
    if (run_.empty() || run_.back().id < id) {
      if (hashed_.find(id, id_at)) return false;
      run_.push_back(RunEntry{id, position});
      return true;
    }
    if (auto index = run_index(id)) {
      if (run_[*index].position != 0) return false;
      if (hashed_.find(id, id_at)) return false;
      run_.mutable_at(*index).position = position;  // an erased id comes back
      return true;
    }
    return hashed_.insert(id, position, id_at);
  }

  // Removes `id`; true if it was present.
  template <typename IdAt>
  bool erase(const Uuid& id, IdAt&& id_at) {
    if (hashed_.erase(id, id_at)) return true;
    const auto index = run_index(id);
    if (!index || run_[*index].position == 0) return false;
    run_.mutable_at(*index).position = 0;
    return true;
  }

  void unown() noexcept {
    run_.unown();
    hashed_.unown();
  }

 private:
  struct RunEntry {
    Uuid id;
    GlobalPosition position;  // 0: erased
  };

  // Binary search; only ids inside the run's range are looked for, so random
  // (v4) ids never pay for it.
  std::optional<std::size_t> run_index(const Uuid& id) const noexcept {
    if (run_.empty() || id < run_[0].id || run_.back().id < id) return std::nullopt;
    std::size_t low = 0;
    std::size_t high = run_.size();
    while (low < high) {
      const std::size_t middle = low + (high - low) / 2;
      if (run_[middle].id < id) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    if (low < run_.size() && run_[low].id == id) return low;
    return std::nullopt;
  }

  ChunkedLog<RunEntry, 4096> run_;
  IdHashTable hashed_;
};

// Stream id -> index into State::streams: open addressing over 8-byte slots
// (32 bits of the name's hash, index + 1); names are compared through
// `name_at(index)`, which should not miss the cache more than the stream's own
// state does.
class StreamIndex {
 public:
  static std::uint64_t hash(std::string_view name) noexcept {
    return std::hash<std::string_view>{}(name);
  }

  template <typename NameAt>
  std::optional<std::uint32_t> find(std::string_view name, NameAt&& name_at) const {
    if (slots_.empty()) return std::nullopt;
    const std::uint64_t h = hash(name);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) return std::nullopt;
      if ((slot >> 32) == (h >> 32) && name_at(index_of(slot)) == name) return index_of(slot);
    }
  }

  // Precondition: `name` is absent.
  template <typename NameAt>
  void insert(std::string_view name, std::uint32_t index, NameAt&& name_at) {
    if ((count_ + 1) * 10 > slots_.size() * 7) grow(name_at);
    place(hash(name), index);
    ++count_;
  }

  template <typename NameAt>
  void erase(std::string_view name, NameAt&& name_at) {
    if (slots_.empty()) return;
    const std::uint64_t h = hash(name);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) return;
      if ((slot >> 32) == (h >> 32) && name_at(index_of(slot)) == name) break;
    }
    for (std::size_t j = i;;) {
      j = (j + 1) & mask;
      const std::uint64_t slot = slots_[j];
      if (slot == 0) break;
      const std::size_t home = hash(name_at(index_of(slot))) & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slot;
      i = j;
    }
    slots_[i] = 0;
    --count_;
  }

 private:
  static std::uint32_t index_of(std::uint64_t slot) noexcept {
    return static_cast<std::uint32_t>((slot & 0xFFFFFFFFULL) - 1);
  }
  void place(std::uint64_t h, std::uint32_t index) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = (h & 0xFFFFFFFF00000000ULL) | (std::uint64_t{index} + 1);
  }
  template <typename NameAt>
  void grow(NameAt& name_at) {
    std::vector<std::uint64_t> old(slots_.empty() ? 64 : slots_.size() * 2, 0);
    old.swap(slots_);
    for (std::uint64_t slot : old) {
      if (slot != 0) place(hash(name_at(index_of(slot))), index_of(slot));
    }
  }

  std::vector<std::uint64_t> slots_;
  std::size_t count_ = 0;
};

// One stored event, 96 bytes. Its data and metadata are contiguous in the arena.
struct EventRecord {
  static constexpr std::uint8_t kHasCausation = 1;
  static constexpr std::uint8_t kHasCorrelation = 2;
  static constexpr std::uint8_t kDeleted = 4;  // hard-deleted: a hole

  Uuid id;
  Uuid causation_id;
  Uuid correlation_id;
  std::int64_t created_at_us;
  StreamVersion stream_version;
  std::uint32_t stream;  // index into State::streams of its original stream
  std::uint32_t type;    // index into State::types
  ByteArena::Ref payload;
  std::uint32_t data_size;
  std::uint32_t metadata_size;
  std::uint8_t flags;
};

struct NameRef {
  ByteArena::Ref ref;
  std::uint32_t size = 0;
};

struct StreamState {
  NameRef name;      // in the arena: what RecordedEvent::stream_id views
  std::string text;  // the same name, beside the state, for index lookups
  Timestamp created_at{};
  std::optional<Timestamp> deleted_at;
  bool hard_deleted = false;
  // Global positions of its events and links; entry i has event_number i + 1.
  // Hard-deleted targets stay as holes.
  std::vector<GlobalPosition> entries;
};

// Names are views into the arena, which never moves or changes written bytes.
using NameMap = std::unordered_map<std::string_view, std::uint32_t>;
using SnapshotMap = std::map<std::string, Snapshot, std::less<>>;
struct StoredCheckpoint {
  StreamVersion event_number;
  LeaseToken token;  // of the lease that wrote it (or that took the subscription since)
};
using CheckpointMap = std::map<std::pair<std::string, std::string>, StoredCheckpoint>;

struct State {
  ChunkedLog<EventRecord, 1024> events;  // index = global position - 1
  ByteArena arena;
  IdIndex ids;
  std::vector<Cow<StreamState>> streams;  // index + 1 = creation sequence
  Cow<StreamIndex> stream_names;          // live (not hard-deleted) streams only
  Cow<std::vector<NameRef>> types;
  Cow<NameMap> type_names;
  Cow<SnapshotMap> snapshots;
  Cow<CheckpointMap> checkpoints;

  // Gives up ownership of everything shared with a copy (both sides of a fork).
  void unown() noexcept {
    events.unown();
    arena.seal();
    ids.unown();
    for (auto& stream : streams) stream.unown();
    stream_names.unown();
    types.unown();
    type_names.unown();
    snapshots.unown();
    checkpoints.unown();
  }
};

}  // namespace gamebot::eventstore::memory_detail
