// The in-memory backend's own features: O(1) reset and whole-store
// snapshot/restore (copy-on-write forks), and its storage limits.

#include <catch2/catch.hpp>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore {
namespace {

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

std::vector<EventData> batch(std::size_t n, const std::string& tag) {
  std::vector<EventData> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(event("E", tag + std::to_string(i)));
  return out;
}

struct MemoryStore {
  std::shared_ptr<MemoryBackend> backend = std::make_shared<MemoryBackend>();
  EventStore store{backend, [] {
                     StoreOptions o;
                     o.allow_hard_delete = true;
                     return o;
                   }()};
};

TEST_CASE("reset empties the memory store and restarts positions at 1", "[eventstore][memory]") {
  MemoryStore m;
  REQUIRE(m.store.append("s", 0, batch(5, "a")).ok());
  m.store.record_snapshot(Snapshot{"s", 5, "T", "x", "", {}});
  {
    Subscription sub = m.store.subscribe_persistent("sub", "s");
    REQUIRE(sub.next(std::chrono::seconds(1)).has_value());
  }
  const RecordedEvent held = m.store.read_stream_forward("s").events.at(0);

  m.backend->reset();

  CHECK(m.store.head_position() == 0);
  CHECK_FALSE(m.store.stream_info("s").has_value());
  CHECK_FALSE(m.store.read_snapshot("s").has_value());
  CHECK_FALSE(m.backend->load_checkpoint("sub", "s").has_value());
  CHECK(m.store.list_streams().streams.empty());
  const AppendResult again = m.store.append("s", 0, batch(1, "b"));
  REQUIRE(again.ok());
  CHECK(again.first_position == 1);
  // Events read before the reset stay valid: they share their storage.
  CHECK(held.data == "a0");
  CHECK(held.stream_id == "s");
}

TEST_CASE("snapshot and restore fork a prepared state into independent stores",
          "[eventstore][memory][snapshot]") {
  MemoryStore prepared;
  // Enough events to span several record chunks and byte blocks.
  for (int s = 0; s < 30; ++s) {
    REQUIRE(prepared.store.append("p-" + std::to_string(s), 0, batch(100, "p")).ok());
  }
  const auto first_ids = prepared.store.read_stream_forward("p-0").events;
  REQUIRE(prepared.store.link("links", 0, first_ids).ok());
  prepared.store.record_snapshot(Snapshot{"p-0", 100, "T", "snap", "", {}});
  prepared.backend->store_checkpoint("sub", "$all", 42, kNoLease);

  const MemorySnapshot frozen = prepared.backend->snapshot();
  CHECK(frozen.head_position() == 3000);

  // The source keeps changing after the snapshot.
  REQUIRE(prepared.store.append("p-0", 100, batch(1, "later")).ok());
  REQUIRE(prepared.store.delete_stream("p-1", 100, DeleteMode::hard).ok());

  std::vector<MemoryStore> forks(3);
  for (auto& fork : forks) fork.backend->restore(frozen);
  for (std::size_t i = 0; i < forks.size(); ++i) {
    EventStore& store = forks[i].store;
    INFO("fork " << i);
    CHECK(store.head_position() == 3000);
    CHECK(store.stream_info("p-0")->version == 100);
    CHECK(store.stream_info("p-1")->version == 100);
    CHECK(store.read_stream_forward("links").events.size() == 100);
    CHECK(store.read_snapshot("p-0")->data == "snap");
    CHECK(forks[i].backend->load_checkpoint("sub", "$all") == 42);
    // Each fork diverges on its own.
    REQUIRE(store.append("p-0", 100, batch(i + 1, "fork")).ok());
    REQUIRE(store.delete_stream("p-2", 100, DeleteMode::hard).ok());
    store.record_snapshot(Snapshot{"p-0", 101, "T", "fork" + std::to_string(i), "", {}});
  }
  for (std::size_t i = 0; i < forks.size(); ++i) {
    EventStore& store = forks[i].store;
    CHECK(store.stream_info("p-0")->version == static_cast<StreamVersion>(100 + i + 1));
    CHECK(store.read_stream_backward("p-0", kLatest, 1).events.at(0).data ==
          "fork" + std::to_string(i));
    CHECK(store.read_snapshot("p-0")->data == "fork" + std::to_string(i));
    CHECK(store.head_position() == static_cast<GlobalPosition>(3000 + i + 1));
  }
  // The source saw none of the forks' writes, and they saw none of its.
  CHECK(prepared.store.stream_info("p-0")->version == 101);
  CHECK(prepared.store.read_stream_backward("p-0", kLatest, 1).events.at(0).data == "later0");
  CHECK(prepared.store.stream_info("p-2")->version == 100);
  CHECK_FALSE(prepared.store.stream_info("p-1").has_value());
  CHECK(prepared.store.read_snapshot("p-0")->data == "snap");

  // The snapshot itself never changed: restoring it again gives the prepared state.
  MemoryStore again;
  again.backend->restore(frozen);
  CHECK(again.store.head_position() == 3000);
  CHECK(again.store.stream_info("p-1")->version == 100);
  CHECK(again.store.read_stream_forward("p-1").events.size() == 100);
  // Ids hard-deleted in the source are still taken in the fork.
  const auto p1 = again.store.read_stream_forward("p-1").events;
  EventData duplicate = event("Dup");
  duplicate.id = p1.at(5).event_id;
  CHECK(again.store.append("x", 0, duplicate).status == WriteStatus::duplicate_event_id);
  // Restoring an empty snapshot empties the store.
  again.backend->restore(MemorySnapshot{});
  CHECK(again.store.head_position() == 0);
}

TEST_CASE("restore replaces the state of a store that already has data",
          "[eventstore][memory][snapshot]") {
  MemoryStore a;
  REQUIRE(a.store.append("a", 0, batch(3, "a")).ok());
  const MemorySnapshot snap = a.backend->snapshot();
  MemoryStore b;
  REQUIRE(b.store.append("b", 0, batch(7, "b")).ok());
  b.backend->restore(snap);
  CHECK_FALSE(b.store.stream_info("b").has_value());
  CHECK(b.store.stream_info("a")->version == 3);
  CHECK(b.store.append("a", 3, batch(1, "c")).first_position == 4);
}

TEST_CASE("events larger than a storage block and many small streams are stored exactly",
          "[eventstore][memory]") {
  MemoryStore m;
  const std::string big(3 * 1024 * 1024 + 17, 'x');
  REQUIRE(m.store.append("big", 0, {event("Big", big), event("Small", "s")}).ok());
  const auto read = m.store.read_stream_forward("big").events;
  REQUIRE(read.size() == 2);
  CHECK(read[0].data == big);
  CHECK(read[1].data == "s");
  for (int i = 0; i < 2'000; ++i) {
    REQUIRE(m.store.append("stream-" + std::to_string(i), 0, event("T", std::to_string(i))).ok());
  }
  CHECK(m.store.read_stream_forward("stream-1999").events.at(0).data == "1999");
  CHECK(m.store.read_all_forward(0, 100'000).events.size() == 2'002);
}

TEST_CASE("the memory scheme names the backend and its ownership is per object",
          "[eventstore][memory]") {
  MemoryBackend backend;
  CHECK(backend.scheme() == "memory");
  auto lease = backend.try_acquire_subscription("n", "s");
  REQUIRE(lease != nullptr);
  CHECK(backend.try_acquire_subscription("n", "s") == nullptr);
  CHECK(backend.try_acquire_subscription("n", "other") != nullptr);
  lease.reset();
  CHECK(backend.try_acquire_subscription("n", "s") != nullptr);
}

}  // namespace
}  // namespace gamebot::eventstore
