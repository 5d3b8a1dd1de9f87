// The store integrity check: a clean store passes on memory and SQLite; each
// invariant, broken by a backend decorator that lies about one read (or by
// tampering with an SQLite file), is reported by name.

#include "gamebot/eventstore/verify.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/testing/postgres.hpp"
#include "gamebot/testing/sqlite_tamper.hpp"

namespace gamebot::eventstore {
namespace {

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

// Forwards everything to a real backend; each hook may alter one kind of read.
class LyingBackend final : public Backend {
 public:
  explicit LyingBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}

  std::function<void(ReadResult&)> on_read_all;
  std::function<void(std::string_view, ReadResult&)> on_read_stream;
  std::function<void(std::string_view, std::optional<StreamInfo>&)> on_stream_info;
  std::function<void(StreamListPage&)> on_list_streams;

  std::string_view scheme() const noexcept override { return inner_->scheme(); }
  WriteResult append(std::string_view s, ExpectedVersion e,
                     std::span<const NewEvent> events) override {
    return inner_->append(s, e, events);
  }
  WriteResult link(std::string_view s, ExpectedVersion e, std::span<const Uuid> ids) override {
    return inner_->link(s, e, ids);
  }
  WriteResult delete_stream(std::string_view s, ExpectedVersion e, DeleteMode mode) override {
    return inner_->delete_stream(s, e, mode);
  }
  ReadResult read_stream(std::string_view s, StreamVersion start, std::size_t count,
                         Direction direction) override {
    ReadResult r = inner_->read_stream(s, start, count, direction);
    if (on_read_stream) on_read_stream(s, r);
    return r;
  }
  ReadResult read_all(GlobalPosition start, std::size_t count, Direction direction) override {
    ReadResult r = inner_->read_all(start, count, direction);
    if (on_read_all) on_read_all(r);
    return r;
  }
  GlobalPosition head_position() override { return inner_->head_position(); }
  std::optional<StreamInfo> stream_info(std::string_view s) override {
    auto info = inner_->stream_info(s);
    if (on_stream_info) on_stream_info(s, info);
    return info;
  }
  StreamListPage list_streams(const StreamListQuery& q) override {
    StreamListPage page = inner_->list_streams(q);
    if (on_list_streams) on_list_streams(page);
    return page;
  }
  void record_snapshot(const Snapshot& s) override { inner_->record_snapshot(s); }
  std::optional<Snapshot> read_snapshot(std::string_view id) override {
    return inner_->read_snapshot(id);
  }
  bool delete_snapshot(std::string_view id) override { return inner_->delete_snapshot(id); }
  std::optional<StreamVersion> load_checkpoint(std::string_view n, std::string_view s) override {
    return inner_->load_checkpoint(n, s);
  }
  bool store_checkpoint(std::string_view n, std::string_view s, StreamVersion v,
                        LeaseToken t) override {
    return inner_->store_checkpoint(n, s, v, t);
  }
  bool delete_checkpoint(std::string_view n, std::string_view s) override {
    return inner_->delete_checkpoint(n, s);
  }
  std::unique_ptr<SubscriptionLease> try_acquire_subscription(std::string_view n,
                                                              std::string_view s) override {
    return inner_->try_acquire_subscription(n, s);
  }
  std::vector<StoredSubscription> list_subscriptions() override {
    return inner_->list_subscriptions();
  }

 private:
  std::shared_ptr<Backend> inner_;
};

// Streams a (3 events), b (2 events, links to a's 1 and 3, 1 event), c (soft-
// deleted), d (hard-deleted, leaving holes), e (1 event).
void populate(EventStore& store) {
  REQUIRE(store.append("a", 0, {event("A", "1"), event("A", "2"), event("A", "3")}).ok());
  REQUIRE(store.append("b", 0, {event("B", "1"), event("B", "2")}).ok());
  ReadResult a = store.read_stream_forward("a");
  REQUIRE(a.events.size() == 3);
  const std::vector<Uuid> ids{a.events[0].event_id, a.events[2].event_id};
  REQUIRE(store.link("b", 2, ids).ok());
  REQUIRE(store.append("b", 4, event("B", "5")).ok());  // an own event after the links
  REQUIRE(store.append("c", 0, {event("C"), event("C")}).ok());
  REQUIRE(store.delete_stream("c", 2).ok());
  REQUIRE(store.append("d", 0, {event("D"), event("D")}).ok());
  REQUIRE(store.delete_stream("d", 2, DeleteMode::hard).ok());
  REQUIRE(store.append("e", 0, event("E")).ok());
}

StoreOptions hard_deletes() {
  StoreOptions options;
  options.allow_hard_delete = true;
  return options;
}

struct Lying {
  std::shared_ptr<LyingBackend> backend;
  EventStore store;
};

Lying lying_store() {
  auto backend = std::make_shared<LyingBackend>(std::make_shared<MemoryBackend>());
  EventStore store(backend, hard_deletes());
  populate(store);
  return Lying{backend, std::move(store)};
}

std::string describe_all(const IntegrityReport& report) {
  std::string text;
  for (const auto& v : report.violations) text += describe(v) + "\n";
  return text;
}

VerifyOptions small_pages() {
  VerifyOptions options;
  options.page_size = 2;  // every read crosses page boundaries
  return options;
}

TEST_CASE("verify passes a clean memory store with links, soft and hard deletes",
          "[eventstore][verify]") {
  EventStore store(std::make_shared<MemoryBackend>(), hard_deletes());
  populate(store);
  for (std::size_t page : {std::size_t{1}, std::size_t{2}, std::size_t{1000}}) {
    VerifyOptions options;
    options.page_size = page;
    IntegrityReport report = verify(store, options);
    INFO(describe_all(report));
    CHECK(report.ok());
    CHECK(report.events == 9);  // a 3, b 3, c 2, e 1
    CHECK(report.streams == 4);
    CHECK(report.deleted_streams == 1);
    CHECK(report.links == 2);
    CHECK(report.head_position == 11);  // d's two hard-deleted positions are holes
  }
}

TEST_CASE("verify passes an empty store", "[eventstore][verify]") {
  EventStore store(std::make_shared<MemoryBackend>());
  IntegrityReport report = verify(store);
  CHECK(report.ok());
  CHECK(report.events == 0);
  CHECK(report.streams == 0);
}

TEST_CASE("verify reports positions that do not increase in $all as positions_increasing",
          "[eventstore][verify]") {
  Lying s = lying_store();
  s.backend->on_read_all = [](ReadResult& r) {
    if (r.events.size() >= 2) std::swap(r.events[0], r.events[1]);
  };
  IntegrityReport report = verify(s.store, small_pages());
  INFO(describe_all(report));
  CHECK_FALSE(report.ok());
  CHECK(report.count(Invariant::positions_increasing) > 0);
}

TEST_CASE("verify reports an event id seen twice in $all as unique_event_ids",
          "[eventstore][verify]") {
  Lying s = lying_store();
  s.backend->on_read_all = [](ReadResult& r) {
    if (!r.events.empty() && r.events.front().global_position == 1) {
      r.events.push_back(r.events.front());
      r.events.back().global_position = 100;
      r.events.back().event_number = 100;
    }
  };
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::unique_event_ids) == 1);
}

TEST_CASE("verify reports a missing stream version as versions_gap_free", "[eventstore][verify]") {
  Lying s = lying_store();
  auto drop_a2 = [](std::vector<RecordedEvent>& events) {
    std::erase_if(
        events, [](const RecordedEvent& e) { return e.stream_id == "a" && e.stream_version == 2; });
  };
  s.backend->on_read_all = [drop_a2](ReadResult& r) { drop_a2(r.events); };
  s.backend->on_read_stream = [drop_a2](std::string_view, ReadResult& r) { drop_a2(r.events); };
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  REQUIRE(report.count(Invariant::versions_gap_free) == 2);  // in $all and in the stream read
  CHECK(report.violations.front().stream_id == "a");
  CHECK(report.violations.front().detail == "version 2 is missing from $all");
}

TEST_CASE("verify reports a stream event missing from $all as stream_event_in_all",
          "[eventstore][verify]") {
  Lying s = lying_store();
  s.backend->on_read_all = [](ReadResult& r) {
    std::erase_if(r.events, [](const RecordedEvent& e) { return e.stream_id == "e"; });
  };
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::stream_event_in_all) == 1);
  CHECK(report.events == 8);
}

TEST_CASE("verify reports $all events that no stream holds as all_event_in_stream",
          "[eventstore][verify]") {
  Lying s = lying_store();
  SECTION("the event's stream does not exist") {
    s.backend->on_read_all = [](ReadResult& r) {
      for (auto& e : r.events)
        if (e.stream_id == "e") e.stream_id = "ghost";
    };
  }
  SECTION("a read of its live stream leaves it out") {
    s.backend->on_read_stream = [](std::string_view stream, ReadResult& r) {
      if (stream == "a") std::erase_if(r.events, [](const auto& e) { return e.event_number == 3; });
    };
  }
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::all_event_in_stream) == 1);
}

TEST_CASE("verify reports a link to an event that is not in $all as link_target_exists",
          "[eventstore][verify]") {
  Lying s = lying_store();
  s.backend->on_read_stream = [](std::string_view stream, ReadResult& r) {
    for (auto& e : r.events)
      if (stream == "b" && e.stream_id != "b" && e.stream_version == 3) e.event_id = Uuid::v7();
  };
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  REQUIRE(report.count(Invariant::link_target_exists) == 1);
  CHECK(report.links == 2);
  const auto it =
      std::find_if(report.violations.begin(), report.violations.end(),
                   [](const Violation& v) { return v.invariant == Invariant::link_target_exists; });
  CHECK(it->stream_id == "b");
  CHECK(it->version == 4);  // the link's own number in b
}

TEST_CASE("verify reports inconsistent stream metadata as stream_metadata",
          "[eventstore][verify]") {
  Lying s = lying_store();
  bool only_metadata = true;  // the lie breaks no other invariant
  SECTION("stream_info disagrees with the listing") {
    s.backend->on_stream_info = [](std::string_view stream, std::optional<StreamInfo>& info) {
      if (stream == "a" && info) info->version = 7;
    };
  }
  SECTION("the listing's version disagrees with the events") {
    s.backend->on_list_streams = [](StreamListPage& page) {
      for (auto& info : page.streams)
        if (info.stream_id == "e") info.version = 2;
    };
    s.backend->on_stream_info = [](std::string_view stream, std::optional<StreamInfo>& info) {
      if (stream == "e" && info) info->version = 2;
    };
  }
  SECTION("a stream is listed twice") {
    s.backend->on_list_streams = [](StreamListPage& page) {
      if (!page.streams.empty()) page.streams.push_back(page.streams.front());
    };
  }
  SECTION("a soft-deleted stream is listed as live") {
    s.backend->on_list_streams = [](StreamListPage& page) {
      for (auto& info : page.streams) info.deleted_at.reset();
    };
    only_metadata = false;  // c's events are then also missing from a "live" stream's read
  }
  IntegrityReport report = verify(s.store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::stream_metadata) >= 1);
  if (only_metadata) CHECK(report.count(Invariant::stream_metadata) == report.violations.size());
}

TEST_CASE("verify stops collecting at max_violations and says it truncated",
          "[eventstore][verify]") {
  Lying s = lying_store();
  s.backend->on_read_all = [](ReadResult& r) { std::reverse(r.events.begin(), r.events.end()); };
  VerifyOptions options;
  options.max_violations = 2;
  IntegrityReport report = verify(s.store, options);
  CHECK(report.violations.size() == 2);
  CHECK(report.truncated);
  CHECK_FALSE(report.ok());
}

TEST_CASE("verify rejects a zero page size", "[eventstore][verify]") {
  EventStore store(std::make_shared<MemoryBackend>());
  VerifyOptions options;
  options.page_size = 0;
  CHECK_THROWS_AS(verify(store, options), InvalidArgument);
}

TEST_CASE("verify passes a clean SQLite file and reports a deleted event row",
          "[eventstore][verify][sqlite]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/verify.db";
  {
    EventStore store = open("sqlite:" + file, hard_deletes());
    populate(store);
    IntegrityReport report = verify(store, small_pages());
    INFO(describe_all(report));
    CHECK(report.ok());
    CHECK(report.events == 9);
    CHECK(report.links == 2);
  }
  // Past the append-only triggers: they refuse the delete (sqlite_backend_test.cpp).
  CHECK(testing::tamper_sqlite_store(
            file, "DELETE FROM eventstore_events WHERE stream_id = 'a' AND stream_version = 2") ==
        1);
  EventStore store = open("sqlite:" + file);
  IntegrityReport report = verify(store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::versions_gap_free) == 2);
  CHECK(report.events == 8);
}

TEST_CASE("verify reports an SQLite event row rewritten past the append-only triggers",
          "[eventstore][verify][sqlite]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/rewritten.db";
  {
    EventStore store = open("sqlite:" + file, hard_deletes());
    populate(store);
  }
  CHECK(testing::tamper_sqlite_store(file,
                                     "UPDATE eventstore_events SET stream_version = 7 WHERE "
                                     "stream_id = 'a' AND stream_version = 2") == 1);
  EventStore store = open("sqlite:" + file);
  IntegrityReport report = verify(store);
  INFO(describe_all(report));
  CHECK(report.count(Invariant::versions_gap_free) >= 1);
  CHECK(report.events == 9);
}

TEST_CASE("verify reports SQLite event rows whose stream row is gone as all_event_in_stream",
          "[eventstore][verify][sqlite]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/orphans.db";
  {
    EventStore store = open("sqlite:" + file, hard_deletes());
    populate(store);
  }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    const int rc = sqlite3_exec(db, "DELETE FROM eventstore_streams WHERE stream_id = 'e'", nullptr,
                                nullptr, nullptr);
    CHECK(sqlite3_changes(db) == 1);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
  EventStore store = open("sqlite:" + file);
  IntegrityReport report = verify(store);
  INFO(describe_all(report));
  REQUIRE(report.count(Invariant::all_event_in_stream) == 1);
  CHECK(report.violations.front().stream_id == "e");
  CHECK(report.streams == 3);
}

}  // namespace
}  // namespace gamebot::eventstore
