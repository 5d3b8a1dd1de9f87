// Conformance: links, soft and hard deletes, stream info, listing, snapshots.

#include <catch2/catch.hpp>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

TEST_CASE("linked events keep their original stream, version and position", "[eventstore][link]") {
  Fixture f;
  REQUIRE(f.store.append("a", 0, events(3, "A")).ok());
  REQUIRE(f.store.append("b", 0, events(2, "B")).ok());
  const auto a = f.store.read_stream_forward("a").events;
  const auto b = f.store.read_stream_forward("b").events;

  const std::vector<RecordedEvent> chosen = {a[1], b[0]};
  const WriteResult result = f.store.link("links", ExpectedVersion::no_stream(), chosen);
  REQUIRE(result.ok());
  CHECK(result.version == 2);
  CHECK(result.first_position == 0);
  CHECK(f.store.head_position() == 5);  // links add no events to $all

  const auto linked = f.store.read_stream_forward("links").events;
  REQUIRE(linked.size() == 2);
  CHECK(linked[0].event_number == 1);
  CHECK(linked[0].stream_id == "a");
  CHECK(linked[0].stream_version == 2);
  CHECK(linked[0].global_position == a[1].global_position);
  CHECK(linked[0].event_id == a[1].event_id);
  CHECK(linked[0].data == a[1].data);
  CHECK(linked[1].event_number == 2);
  CHECK(linked[1].stream_id == "b");
  CHECK(linked[1].stream_version == 1);
  CHECK(event_numbers(f.store.read_stream_backward("links").events) ==
        std::vector<StreamVersion>{2, 1});
  CHECK(f.store.stream_info("links")->version == 2);

  // Links and events can be mixed in one stream.
  REQUIRE(f.store.append("links", 2, event("Own")).ok());
  const auto mixed = f.store.read_stream_forward("links").events;
  REQUIRE(mixed.size() == 3);
  CHECK(mixed[2].stream_id == "links");
  CHECK(mixed[2].stream_version == 3);
}

TEST_CASE("link outcomes: expected version, unknown ids, duplicates, deleted and $all targets",
          "[eventstore][link]") {
  Fixture f;
  REQUIRE(f.store.append("a", 0, events(3, "A")).ok());
  const auto a = f.store.read_stream_forward("a").events;
  const std::vector<Uuid> first = {a[0].event_id};
  REQUIRE(f.store.link("l", 0, first).ok());

  WriteResult r = f.store.link("l", ExpectedVersion::no_stream(), std::vector<Uuid>{a[1].event_id});
  CHECK(r.status == WriteStatus::stream_exists);
  CHECK(r.version == 1);
  r = f.store.link("l", 0, std::vector<Uuid>{a[1].event_id});
  CHECK(r.status == WriteStatus::wrong_expected_version);
  CHECK(r.version == 1);

  const Uuid unknown = Uuid::v7();
  r = f.store.link("l", 1, std::vector<Uuid>{a[1].event_id, unknown});
  CHECK(r.status == WriteStatus::event_not_found);
  CHECK(r.event_id == unknown);
  CHECK(f.store.stream_info("l")->version == 1);

  r = f.store.link("l", ExpectedVersion::any(), first);
  CHECK(r.status == WriteStatus::duplicate_event_id);
  CHECK(r.event_id == a[0].event_id);
  r = f.store.link("l", ExpectedVersion::any(), std::vector<Uuid>{a[2].event_id, a[2].event_id});
  CHECK(r.status == WriteStatus::duplicate_event_id);
  r = f.store.link("a", ExpectedVersion::any(), first);  // into its own stream
  CHECK(r.status == WriteStatus::duplicate_event_id);
  CHECK(f.store.read_stream_forward("l").events.size() == 1);
  CHECK(f.store.stream_info("a")->version == 3);

  r = f.store.link("fresh", ExpectedVersion::stream_exists(), first);
  CHECK(r.status == WriteStatus::stream_not_found);
  CHECK_FALSE(f.store.stream_info("fresh").has_value());

  REQUIRE(f.store.delete_stream("l", 1).ok());
  r = f.store.link("l", ExpectedVersion::any(), std::vector<Uuid>{a[1].event_id});
  CHECK(r.status == WriteStatus::stream_deleted);

  const std::vector<Uuid> none;
  r = f.store.link("empty-links", ExpectedVersion::any(), none);
  CHECK(r.ok());
  CHECK_FALSE(f.store.stream_info("empty-links").has_value());
}

TEST_CASE("soft delete hides the stream but keeps its events in $all and in links",
          "[eventstore][delete]") {
  Fixture f;
  REQUIRE(f.store.append("doomed", 0, events(3, "D")).ok());
  REQUIRE(f.store.append("keeper", 0, events(1, "K")).ok());
  const auto doomed = f.store.read_stream_forward("doomed").events;
  REQUIRE(f.store.link("links", 0, std::vector<Uuid>{doomed[0].event_id}).ok());

  const WriteResult deleted = f.store.delete_stream("doomed", 3);
  REQUIRE(deleted.ok());
  CHECK(deleted.version == 3);

  CHECK(f.store.read_stream_forward("doomed").status == ReadStatus::stream_deleted);
  CHECK(f.store.read_stream_backward("doomed").status == ReadStatus::stream_deleted);
  CHECK(f.store.read_stream_forward("doomed").events.empty());
  EventRange range = f.store.stream_forward("doomed");
  CHECK(range.begin() == range.end());
  CHECK(range.status() == ReadStatus::stream_deleted);

  const auto info = f.store.stream_info("doomed");
  REQUIRE(info.has_value());
  CHECK(info->deleted());
  CHECK(info->version == 3);

  CHECK(f.store.read_all_forward().events.size() == 4);
  const auto links = f.store.read_stream_forward("links").events;
  REQUIRE(links.size() == 1);
  CHECK(links[0].stream_id == "doomed");

  CHECK(f.store.delete_stream("doomed", ExpectedVersion::any()).status ==
        WriteStatus::stream_deleted);
  const auto listed = f.store.list_streams().streams;
  const auto it = std::find_if(listed.begin(), listed.end(),
                               [](const StreamInfo& s) { return s.stream_id == "doomed"; });
  REQUIRE(it != listed.end());
  CHECK(it->deleted());
}

TEST_CASE("delete checks the expected version and existence", "[eventstore][delete]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  WriteResult r = f.store.delete_stream("s", 2);
  CHECK(r.status == WriteStatus::wrong_expected_version);
  CHECK(r.version == 3);
  r = f.store.delete_stream("s", ExpectedVersion::no_stream());
  CHECK(r.status == WriteStatus::stream_exists);
  r = f.store.delete_stream("missing", ExpectedVersion::any());
  CHECK(r.status == WriteStatus::stream_not_found);
  r = f.store.delete_stream("missing", ExpectedVersion::any(), DeleteMode::hard);
  CHECK(r.status == WriteStatus::stream_not_found);
  CHECK(f.store.read_stream_forward("s").events.size() == 3);
  CHECK(f.store.delete_stream("s", ExpectedVersion::stream_exists()).ok());
}

TEST_CASE("hard delete removes the events from the stream, $all and links, leaving holes",
          "[eventstore][delete][hard]") {
  Fixture f;
  REQUIRE(f.store.append("gone", 0, events(1, "G")).ok());     // position 1
  REQUIRE(f.store.append("kept", 0, events(1, "K")).ok());     // position 2
  REQUIRE(f.store.append("gone", 1, events(2, "G", 2)).ok());  // positions 3, 4
  REQUIRE(f.store.append("kept", 1, events(1, "K", 2)).ok());  // position 5
  const auto gone = f.store.read_stream_forward("gone").events;
  const auto kept = f.store.read_stream_forward("kept").events;
  REQUIRE(f.store.link("links", 0, std::vector<Uuid>{gone[1].event_id, kept[0].event_id}).ok());

  REQUIRE(f.store.delete_stream("gone", 3, DeleteMode::hard).ok());

  CHECK(f.store.read_stream_forward("gone").status == ReadStatus::stream_not_found);
  CHECK_FALSE(f.store.stream_info("gone").has_value());
  CHECK(positions(f.store.read_all_forward().events) == std::vector<GlobalPosition>{2, 5});
  CHECK(positions(f.store.read_all_backward().events) == std::vector<GlobalPosition>{5, 2});
  // Pages are filled past holes.
  CHECK(positions(f.store.read_all_forward(1, 1).events) == std::vector<GlobalPosition>{2});
  CHECK(positions(f.store.read_all_forward(3, 1).events) == std::vector<GlobalPosition>{5});
  CHECK(positions(f.store.read_all_backward(4, 1).events) == std::vector<GlobalPosition>{2});
  std::vector<GlobalPosition> paged;
  for (const auto& e : f.store.all_forward(0, 1)) paged.push_back(e.global_position);
  CHECK(paged == std::vector<GlobalPosition>{2, 5});

  const auto links = f.store.read_stream_forward("links").events;
  REQUIRE(links.size() == 1);
  CHECK(links[0].event_number == 2);  // the link at version 1 is a hole now
  CHECK(links[0].stream_id == "kept");
  CHECK(f.store.stream_info("links")->version == 2);

  const auto listed = f.store.list_streams().streams;
  CHECK(std::none_of(listed.begin(), listed.end(),
                     [](const StreamInfo& s) { return s.stream_id == "gone"; }));

  // The id and the stream name are free again; positions are never reused.
  const GlobalPosition head = f.store.head_position();
  CHECK(head >= 5);
  EventData again = event("Again");
  again.id = gone[0].event_id;
  const AppendResult recreated = f.store.append("gone", 0, again);
  REQUIRE(recreated.ok());
  CHECK(recreated.version == 1);
  CHECK(recreated.first_position > head);
  CHECK(f.store.link("links", ExpectedVersion::any(), std::vector<Uuid>{gone[1].event_id}).status ==
        WriteStatus::event_not_found);
}

TEST_CASE("hard delete is refused unless the store allows it", "[eventstore][delete][hard]") {
  auto backend = make_conformance_backend();
  StoreOptions options = suite_options();
  options.allow_hard_delete = false;
  EventStore store = backend->open(options);
  REQUIRE(store.append("s", 0, events(2)).ok());
  CHECK_THROWS_AS(store.delete_stream("s", 2, DeleteMode::hard), InvalidArgument);
  CHECK(store.read_stream_forward("s").events.size() == 2);
  CHECK(store.delete_stream("s", 2).ok());  // soft is always allowed
}

TEST_CASE("a soft-deleted stream can still be hard-deleted", "[eventstore][delete][hard]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(2)).ok());
  REQUIRE(f.store.delete_stream("s", 2).ok());
  CHECK(f.store.delete_stream("s", 1, DeleteMode::hard).status ==
        WriteStatus::wrong_expected_version);
  REQUIRE(f.store.delete_stream("s", 2, DeleteMode::hard).ok());
  CHECK_FALSE(f.store.stream_info("s").has_value());
  CHECK(f.store.read_all_forward().events.empty());
}

TEST_CASE("hard-deleting a stream of links removes the links, not the events",
          "[eventstore][delete][hard][link]") {
  Fixture f;
  REQUIRE(f.store.append("a", 0, events(2)).ok());
  const auto a = f.store.read_stream_forward("a").events;
  REQUIRE(f.store.link("l", 0, a).ok());
  REQUIRE(f.store.delete_stream("l", 2, DeleteMode::hard).ok());
  CHECK(f.store.read_stream_forward("a").events.size() == 2);
  CHECK(f.store.read_all_forward().events.size() == 2);
  CHECK(f.store.read_stream_forward("l").status == ReadStatus::stream_not_found);
  REQUIRE(f.store.link("l", 0, a).ok());  // re-created from version 0
  CHECK(f.store.read_stream_forward("l").events.size() == 2);
}

TEST_CASE("stream info reports version, creation time, deletion and creation order",
          "[eventstore][info]") {
  Fixture f;
  const Timestamp before = now();
  REQUIRE(f.store.append("first", 0, events(4)).ok());
  REQUIRE(f.store.append("second", 0, events(1)).ok());
  const Timestamp after = now();
  const auto first = f.store.stream_info("first");
  const auto second = f.store.stream_info("second");
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->stream_id == "first");
  CHECK(first->version == 4);
  CHECK(first->created_at >= before);
  CHECK(first->created_at <= after);
  CHECK_FALSE(first->deleted());
  CHECK(second->sequence > first->sequence);
  REQUIRE(f.store.append("first", 4, events(1)).ok());
  CHECK(f.store.stream_info("first")->version == 5);
  CHECK(f.store.stream_info("first")->created_at == first->created_at);
  CHECK_FALSE(f.store.stream_info(std::string(kAllStream)).has_value());
}

TEST_CASE("list streams pages in creation order with a prefix filter", "[eventstore][list]") {
  Fixture f;
  for (int i = 1; i <= 7; ++i) {
    REQUIRE(
        f.store.append("list-" + std::to_string(i), 0, events(static_cast<std::size_t>(i))).ok());
    if (i == 3) REQUIRE(f.store.append("other-1", 0, events(1)).ok());
  }
  REQUIRE(f.store.delete_stream("list-2", 2).ok());
  REQUIRE(f.store.delete_stream("list-5", 5, DeleteMode::hard).ok());

  StreamListQuery query;
  query.prefix = "list-";
  query.limit = 3;
  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  for (;;) {
    const StreamListPage page = f.store.list_streams(query);
    page_sizes.push_back(page.streams.size());
    for (const auto& s : page.streams) {
      seen.push_back(s.stream_id);
      if (s.stream_id == "list-2") CHECK(s.deleted());
      if (s.stream_id == "list-4") CHECK(s.version == 4);
    }
    if (!page.next_after) break;
    query.after_sequence = *page.next_after;
  }
  CHECK(seen ==
        std::vector<std::string>{"list-1", "list-2", "list-3", "list-4", "list-6", "list-7"});
  CHECK(page_sizes == std::vector<std::size_t>{3, 3});

  const auto all = f.store.list_streams().streams;
  CHECK(all.size() == 7);  // six list-* and other-1
  CHECK(all[3].stream_id == "other-1");
  query = {};
  query.prefix = "nothing";
  const auto none = f.store.list_streams(query);
  CHECK(none.streams.empty());
  CHECK_FALSE(none.next_after.has_value());
}

TEST_CASE("list streams pages newest first with a prefix filter", "[eventstore][list]") {
  Fixture f;
  for (int i = 1; i <= 7; ++i) {
    REQUIRE(
        f.store.append("list-" + std::to_string(i), 0, events(static_cast<std::size_t>(i))).ok());
    if (i == 3) REQUIRE(f.store.append("other-1", 0, events(1)).ok());
  }
  REQUIRE(f.store.delete_stream("list-2", 2).ok());
  REQUIRE(f.store.delete_stream("list-5", 5, DeleteMode::hard).ok());

  StreamListQuery query;
  query.prefix = "list-";
  query.limit = 4;
  query.order = Direction::backward;
  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  for (;;) {
    const StreamListPage page = f.store.list_streams(query);
    page_sizes.push_back(page.streams.size());
    for (const auto& s : page.streams) {
      seen.push_back(s.stream_id);
      if (s.stream_id == "list-2") CHECK(s.deleted());
      if (s.stream_id == "list-6") CHECK(s.version == 6);
    }
    if (!page.next_after) break;
    query.after_sequence = *page.next_after;
  }
  CHECK(seen ==
        std::vector<std::string>{"list-7", "list-6", "list-4", "list-3", "list-2", "list-1"});
  CHECK(page_sizes == std::vector<std::size_t>{4, 2});

  // Without a prefix, newest first: the last one created leads, other-1 is fourth from the end.
  query = {};
  query.order = Direction::backward;
  const auto all = f.store.list_streams(query).streams;
  REQUIRE(all.size() == 7);
  CHECK(all.front().stream_id == "list-7");
  CHECK(all[3].stream_id == "other-1");
  CHECK(all.back().stream_id == "list-1");
}

TEST_CASE("snapshots are recorded, replaced, read and deleted by source id",
          "[eventstore][snapshot]") {
  Fixture f;
  CHECK_FALSE(f.store.read_snapshot("game-1").has_value());
  const Timestamp before = now();
  Snapshot snapshot{"game-1", 5, "GameState", std::string("state\0v5", 8), "meta", {}};
  f.store.record_snapshot(snapshot);
  auto read = f.store.read_snapshot("game-1");
  REQUIRE(read.has_value());
  CHECK(read->source_id == "game-1");
  CHECK(read->source_version == 5);
  CHECK(read->source_type == "GameState");
  CHECK(read->data == snapshot.data);
  CHECK(read->metadata == "meta");
  CHECK(read->created_at >= before);

  Snapshot newer{"game-1", 9, "GameStateV2", "state-v9", "", Timestamp(std::chrono::seconds(42))};
  f.store.record_snapshot(newer);
  read = f.store.read_snapshot("game-1");
  REQUIRE(read.has_value());
  CHECK(*read == newer);

  f.store.record_snapshot(Snapshot{"game-2", 1, "GameState", "other", "", {}});
  CHECK(f.store.delete_snapshot("game-1"));
  CHECK_FALSE(f.store.read_snapshot("game-1").has_value());
  CHECK_FALSE(f.store.delete_snapshot("game-1"));
  CHECK(f.store.read_snapshot("game-2").has_value());
  CHECK_THROWS_AS(f.store.record_snapshot(Snapshot{"", 1, "T", "", "", {}}), InvalidArgument);
  CHECK_THROWS_AS(f.store.record_snapshot(Snapshot{"x", -1, "T", "", "", {}}), InvalidArgument);
}

TEST_CASE("data survives a reopen of the store", "[eventstore][reopen]") {
  auto backend = make_conformance_backend();
  {
    EventStore store = backend->open(suite_options());
    REQUIRE(store.append("durable", 0, events(3)).ok());
    store.record_snapshot(Snapshot{"durable", 3, "State", "s3", "", {}});
  }
  EventStore store = backend->open(suite_options());
  CHECK(event_numbers(store.read_stream_forward("durable").events) == range(1, 3));
  CHECK(store.read_snapshot("durable").has_value());
  CHECK(store.append("durable", 3, events(1)).ok());
  CHECK(store.head_position() == 4);
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
