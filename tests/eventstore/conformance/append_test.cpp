// Conformance: appends, expected versions, batches, ids, event fields, input validation.

#include <catch2/catch.hpp>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

struct Expectation {
  const char* name;
  ExpectedVersion expected;
  WriteStatus status;
  StreamVersion version;  // ok: the new version; otherwise the actual version
};

void check_expectations(EventStore& store, const std::string& prefix,
                        const std::function<void(const std::string&)>& prepare,
                        const std::vector<Expectation>& table) {
  int i = 0;
  for (const Expectation& row : table) {
    const std::string stream = prefix + "-" + std::to_string(++i);
    prepare(stream);
    const GlobalPosition head = store.head_position();
    const auto before = store.read_stream_forward(stream);
    INFO("expectation " << row.name << " on " << stream);
    const AppendResult result = store.append(stream, row.expected, events(2, "Added"));
    CHECK(to_string(result.status) == to_string(row.status));
    CHECK(result.version == row.version);
    if (!result.ok()) {
      // A refused append leaves no trace.
      CHECK(store.head_position() == head);
      const auto after = store.read_stream_forward(stream);
      CHECK(after.status == before.status);
      CHECK(after.events.size() == before.events.size());
      CHECK(result.first_position == 0);
    } else {
      CHECK(result.first_position == head + 1);
      CHECK(result.last_position == head + 2);
      CHECK(store.stream_info(stream)->version == row.version);
    }
  }
}

TEST_CASE("every expected-version form against a new stream", "[eventstore][append]") {
  Fixture f;
  check_expectations(
      f.store, "new", [](const std::string&) {},
      {
          {"any", ExpectedVersion::any(), WriteStatus::ok, 2},
          {"no_stream", ExpectedVersion::no_stream(), WriteStatus::ok, 2},
          {"stream_exists", ExpectedVersion::stream_exists(), WriteStatus::stream_not_found, 0},
          {"exact 0", 0, WriteStatus::ok, 2},
          {"exact 2", 2, WriteStatus::wrong_expected_version, 0},
      });
}

TEST_CASE("every expected-version form against an existing stream", "[eventstore][append]") {
  Fixture f;
  auto prepare = [&](const std::string& stream) {
    REQUIRE(f.store.append(stream, 0, events(3)).ok());
  };
  check_expectations(f.store, "existing", prepare,
                     {
                         {"any", ExpectedVersion::any(), WriteStatus::ok, 5},
                         {"no_stream", ExpectedVersion::no_stream(), WriteStatus::stream_exists, 3},
                         {"stream_exists", ExpectedVersion::stream_exists(), WriteStatus::ok, 5},
                         {"exact 0", 0, WriteStatus::wrong_expected_version, 3},
                         {"exact 2 (stale)", 2, WriteStatus::wrong_expected_version, 3},
                         {"exact 3", 3, WriteStatus::ok, 5},
                         {"exact 4 (ahead)", 4, WriteStatus::wrong_expected_version, 3},
                     });
}

TEST_CASE("every expected-version form against a soft-deleted stream returns stream_deleted",
          "[eventstore][append][delete]") {
  Fixture f;
  auto prepare = [&](const std::string& stream) {
    REQUIRE(f.store.append(stream, 0, events(3)).ok());
    REQUIRE(f.store.delete_stream(stream, 3).ok());
  };
  check_expectations(
      f.store, "soft", prepare,
      {
          {"any", ExpectedVersion::any(), WriteStatus::stream_deleted, 3},
          {"no_stream", ExpectedVersion::no_stream(), WriteStatus::stream_deleted, 3},
          {"stream_exists", ExpectedVersion::stream_exists(), WriteStatus::stream_deleted, 3},
          {"exact 0", 0, WriteStatus::stream_deleted, 3},
          {"exact 3", 3, WriteStatus::stream_deleted, 3},
      });
}

TEST_CASE("a hard-deleted stream is absent and can be created again from version 0",
          "[eventstore][append][delete]") {
  Fixture f;
  auto prepare = [&](const std::string& stream) {
    REQUIRE(f.store.append(stream, 0, events(3)).ok());
    REQUIRE(f.store.delete_stream(stream, 3, DeleteMode::hard).ok());
  };
  check_expectations(
      f.store, "hard", prepare,
      {
          {"any", ExpectedVersion::any(), WriteStatus::ok, 2},
          {"no_stream", ExpectedVersion::no_stream(), WriteStatus::ok, 2},
          {"stream_exists", ExpectedVersion::stream_exists(), WriteStatus::stream_not_found, 0},
          {"exact 0", 0, WriteStatus::ok, 2},
          {"exact 3 (old version)", 3, WriteStatus::wrong_expected_version, 0},
      });
}

TEST_CASE("an empty batch checks the expected version and writes nothing", "[eventstore][append]") {
  Fixture f;
  const std::vector<EventData> none;
  AppendResult result = f.store.append("empty", ExpectedVersion::any(), none);
  CHECK(result.ok());
  CHECK(result.version == 0);
  CHECK(result.first_position == 0);
  CHECK_FALSE(f.store.stream_info("empty").has_value());
  CHECK(f.store.append("empty", ExpectedVersion::stream_exists(), none).status ==
        WriteStatus::stream_not_found);

  REQUIRE(f.store.append("full", 0, events(3)).ok());
  result = f.store.append("full", 3, none);
  CHECK(result.ok());
  CHECK(result.version == 3);
  result = f.store.append("full", 2, none);
  CHECK(result.status == WriteStatus::wrong_expected_version);
  CHECK(result.version == 3);
  CHECK(f.store.head_position() == 3);
}

TEST_CASE("a 10,000-event batch gets consecutive versions and positions",
          "[eventstore][append][batch]") {
  Fixture f;
  REQUIRE(f.store.append("before", 0, events(7)).ok());
  const auto batch = events(10'000, "Big");
  const AppendResult result = f.store.append("big", ExpectedVersion::no_stream(), batch);
  REQUIRE(result.ok());
  CHECK(result.version == 10'000);
  CHECK(result.first_position == 8);
  CHECK(result.last_position == 10'007);

  StreamVersion expected_version = 0;
  for (const RecordedEvent& e : f.store.stream_forward("big")) {
    ++expected_version;
    REQUIRE(e.stream_version == expected_version);
    REQUIRE(e.global_position == expected_version + 7);
  }
  CHECK(expected_version == 10'000);
  const auto last = f.store.read_stream_backward("big", kLatest, 1);
  REQUIRE(last.events.size() == 1);
  CHECK(last.events[0].type == "Big-10000");
  CHECK(last.events[0].data == "Big-data-10000");
}

TEST_CASE("a batch with a duplicate event id fails as a whole and leaves no trace",
          "[eventstore][append][atomicity]") {
  Fixture f;
  REQUIRE(f.store.append("other", 0, event("Existing")).ok());
  const Uuid taken = f.store.read_stream_forward("other").events.at(0).event_id;
  REQUIRE(f.store.append("target", 0, events(2)).ok());

  auto batch = events(5, "Batch");
  for (auto& e : batch) e.id = Uuid::v7();
  batch[3].id = taken;
  const AppendResult result = f.store.append("target", 2, batch);
  CHECK(result.status == WriteStatus::duplicate_event_id);
  REQUIRE(result.event_id.has_value());
  CHECK(*result.event_id == taken);
  CHECK(result.version == 2);
  CHECK(f.store.head_position() == 3);
  CHECK(f.store.read_stream_forward("target").events.size() == 2);

  // The ids of the refused batch were not kept: the same batch without the
  // duplicate is accepted.
  batch[3].id = Uuid::v7();
  const AppendResult retry = f.store.append("target", 2, batch);
  REQUIRE(retry.ok());
  CHECK(retry.version == 7);
  CHECK(retry.first_position == 4);
}

TEST_CASE("a batch repeating an id inside itself is refused without creating the stream",
          "[eventstore][append][atomicity]") {
  Fixture f;
  auto batch = events(3);
  const Uuid id = Uuid::v7();
  batch[0].id = id;
  batch[2].id = id;
  const AppendResult result = f.store.append("twice", ExpectedVersion::any(), batch);
  CHECK(result.status == WriteStatus::duplicate_event_id);
  CHECK(result.event_id == id);
  CHECK_FALSE(f.store.stream_info("twice").has_value());
  CHECK(f.store.head_position() == 0);
  CHECK(f.store.read_all_forward().events.empty());
}

TEST_CASE("appending an event id again is refused and changes nothing",
          "[eventstore][append][idempotency]") {
  Fixture f;
  EventData e = event("Once", "payload");
  e.id = Uuid::v7();
  REQUIRE(f.store.append("idem", ExpectedVersion::any(), e).ok());
  const AppendResult again = f.store.append("idem", ExpectedVersion::any(), e);
  CHECK(again.status == WriteStatus::duplicate_event_id);
  CHECK(again.version == 1);
  const AppendResult elsewhere = f.store.append("elsewhere", ExpectedVersion::any(), e);
  CHECK(elsewhere.status == WriteStatus::duplicate_event_id);
  CHECK_FALSE(f.store.stream_info("elsewhere").has_value());
  CHECK(f.store.read_stream_forward("idem").events.size() == 1);
}

TEST_CASE("duplicate ids are caught whatever order ids arrive in",
          "[eventstore][append][idempotency]") {
  Fixture f;
  std::vector<Uuid> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(Uuid::v7());  // increasing
  for (int i = 0; i < 60; ++i) ids.push_back(Uuid::v4());  // random
  std::vector<Uuid> order;
  for (int i = 59; i >= 30; --i) order.push_back(ids[static_cast<std::size_t>(i)]);  // descending
  for (int i = 0; i < 30; ++i) order.push_back(ids[static_cast<std::size_t>(i)]);    // ascending
  for (int i = 60; i < 120; ++i) order.push_back(ids[static_cast<std::size_t>(i)]);
  for (std::size_t i = 0; i < order.size(); ++i) {
    EventData e = event("Ordered");
    e.id = order[i];
    REQUIRE(f.store.append("order-" + std::to_string(i % 5), ExpectedVersion::any(), e).ok());
  }
  for (const Uuid& id : ids) {
    EventData again = event("Again");
    again.id = id;
    const AppendResult r = f.store.append("again", ExpectedVersion::any(), again);
    REQUIRE(r.status == WriteStatus::duplicate_event_id);
    CHECK(r.event_id == id);
  }
  CHECK(f.store.head_position() == 120);
  // Every id can be linked, i.e. found.
  CHECK(f.store.link("all-of-them", 0, ids).ok());
  CHECK(f.store.read_stream_forward("all-of-them").events.size() == 120);
}

TEST_CASE("recorded events keep every field of the appended events", "[eventstore][append]") {
  Fixture f;
  EventData full;
  full.type = "PlayerGuessed";
  full.data = std::string("binary\0data\xff\x01", 13);
  full.metadata = R"({"user":"ann"})";
  full.id = Uuid::v4();
  full.causation_id = Uuid::v7();
  full.correlation_id = Uuid::v7();
  full.created_at = Timestamp(std::chrono::microseconds(1'234'567'890'123'456));  // an import
  EventData plain = event("Plain");

  const Timestamp before = now();
  const AppendResult result = f.store.append("fields", 0, {full, plain});
  const Timestamp after = now();
  REQUIRE(result.ok());

  const auto read = f.store.read_stream_forward("fields");
  REQUIRE(read.events.size() == 2);
  const RecordedEvent& a = read.events[0];
  CHECK(a.event_id == *full.id);
  CHECK(a.type == full.type);
  CHECK(a.data == full.data);
  CHECK(a.metadata == full.metadata);
  CHECK(a.causation_id == full.causation_id);
  CHECK(a.correlation_id == full.correlation_id);
  CHECK(a.created_at == *full.created_at);
  CHECK(a.stream_id == "fields");
  CHECK(a.stream_version == 1);
  CHECK(a.event_number == 1);
  CHECK(a.global_position == result.first_position);

  const RecordedEvent& b = read.events[1];
  CHECK_FALSE(b.event_id.is_nil());
  CHECK((b.event_id.bytes()[6] >> 4) == 7);  // a generated id is a UUIDv7
  CHECK_FALSE(b.causation_id.has_value());
  CHECK_FALSE(b.correlation_id.has_value());
  CHECK(b.data.empty());
  CHECK(b.metadata.empty());
  CHECK(b.created_at >= before);
  CHECK(b.created_at <= after);
  CHECK(b.stream_version == 2);

  // A recorded event owns its bytes: it outlives the read result.
  RecordedEvent kept = f.store.read_stream_forward("fields").events.at(0);
  CHECK(kept.data == full.data);
  CHECK(kept.stream_id == "fields");
}

TEST_CASE("$all cannot be appended to, linked into or deleted", "[eventstore][append]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, event("E")).ok());
  CHECK(f.store.append(std::string(kAllStream), ExpectedVersion::any(), event("E")).status ==
        WriteStatus::cannot_append_to_all);
  const auto ids = std::vector<Uuid>{f.store.read_all_forward().events.at(0).event_id};
  CHECK(f.store.link(std::string(kAllStream), ExpectedVersion::any(), ids).status ==
        WriteStatus::cannot_append_to_all);
  CHECK(f.store.delete_stream(std::string(kAllStream), ExpectedVersion::any()).status ==
        WriteStatus::cannot_append_to_all);
  CHECK(f.store.head_position() == 1);
}

TEST_CASE("hostile stream ids are stored and read back verbatim", "[eventstore][append][ids]") {
  Fixture f;
  const std::vector<std::string> hostile = {
      "x",
      "it's",
      "\"quoted\"",
      "100%",
      "a_b%_%%",
      "' OR 1=1; --",
      "back\\slash",
      "tab\there and\nnewline",
      "\xF0\x9F\x8E\xB2-w\xC3\xBCrfel-\xE6\xB8\xB8\xE6\x88\xB2",  // dice emoji, umlaut, CJK
      "$notall",
      std::string(kMaxStreamIdBytes, 'm'),
      std::string(kMaxStreamIdBytes - 2, 'u') + "\xC3\xBC",  // ends in a 2-byte character
  };
  for (const std::string& id : hostile) {
    INFO("stream id: " << id);
    const AppendResult result =
        f.store.append(id, ExpectedVersion::no_stream(), event("Hostile", id));
    REQUIRE(result.ok());
    const auto read = f.store.read_stream_forward(id);
    REQUIRE(read.ok());
    REQUIRE(read.events.size() == 1);
    CHECK(read.events[0].stream_id == id);
    CHECK(read.events[0].data == id);
    const auto info = f.store.stream_info(id);
    REQUIRE(info.has_value());
    CHECK(info->stream_id == id);
    CHECK(info->version == 1);
    StreamListQuery query;
    query.prefix = id;
    const auto listed = f.store.list_streams(query);
    REQUIRE_FALSE(listed.streams.empty());
    CHECK(listed.streams[0].stream_id == id);
    f.store.record_snapshot(Snapshot{id, 1, "HostileSnapshot", id, {}, {}});
  }
  for (const std::string& id : hostile) {
    INFO("snapshot source id: " << id);
    const auto snapshot = f.store.read_snapshot(id);
    REQUIRE(snapshot.has_value());
    CHECK(snapshot->data == id);
  }
  // LIKE-style wildcards in a prefix are literal.
  StreamListQuery query;
  query.prefix = "a_b%";
  auto listed = f.store.list_streams(query);
  REQUIRE(listed.streams.size() == 1);
  CHECK(listed.streams[0].stream_id == "a_b%_%%");
  query.prefix = "100";
  listed = f.store.list_streams(query);
  REQUIRE(listed.streams.size() == 1);
  CHECK(listed.streams[0].stream_id == "100%");
}

template <typename F>
void require_invalid_argument(F&& call) {
  try {
    call();
    FAIL("expected InvalidArgument");
  } catch (const InvalidArgument& error) {
    CHECK(error.fault() == FaultClass::configuration);
  }
}

TEST_CASE("invalid stream ids, types and versions are typed configuration errors",
          "[eventstore][append][ids]") {
  Fixture f;
  const std::vector<std::string> invalid = {
      "",
      std::string(kMaxStreamIdBytes + 1, 'o'),
      std::string(kMaxStreamIdBytes - 1, 'o') + "\xC3\xBC",  // 513 bytes
      std::string("nul\0inside", 10),
      "\xFF",
      "overlong-\xC0\xAF",
      "truncated-\xE2\x82",
      "surrogate-\xED\xA0\x80",
  };
  for (const std::string& id : invalid) {
    INFO("stream id of " << id.size() << " bytes");
    require_invalid_argument([&] { f.store.append(id, ExpectedVersion::any(), event("E")); });
    require_invalid_argument([&] { f.store.read_stream_forward(id); });
    require_invalid_argument([&] { f.store.read_stream_backward(id); });
    require_invalid_argument([&] { f.store.stream_info(id); });
    require_invalid_argument([&] { f.store.delete_stream(id, ExpectedVersion::any()); });
    require_invalid_argument([&] { f.store.subscribe(id); });
    require_invalid_argument([&] { f.store.read_snapshot(id); });
  }
  require_invalid_argument([&] { f.store.append("s", ExpectedVersion::any(), event("")); });
  require_invalid_argument([&] { f.store.append("s", ExpectedVersion::any(), event("bad\xFF")); });
  require_invalid_argument([&] { f.store.append("s", -2, event("E")); });
  require_invalid_argument([&] { f.store.read_stream_forward("s", -1); });
  require_invalid_argument([&] { f.store.read_stream_backward("s", -5); });
  EventData nil_id = event("E");
  nil_id.id = Uuid{};
  require_invalid_argument([&] { f.store.append("s", ExpectedVersion::any(), nil_id); });
  CHECK(f.store.head_position() == 0);
  CHECK(f.store.list_streams().streams.empty());
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
