// Hostile input through the event store API, on every backend (compiled once
// per backend with its target, see hostile_target.hpp): SQL in stream ids,
// event types, metadata, snapshot ids and subscription names; quotes; LIKE
// wildcards; names at and over the length limit; invalid UTF-8; large
// payloads. Documented behaviour (event.hpp, validation.hpp, types.hpp):
// * stream ids, event types and snapshot ids are 1..512 bytes of valid UTF-8
//   without NUL; anything else is InvalidArgument (FaultClass::configuration)
//   before the backend is called, so nothing is written;
// * data and metadata are bytes: any content round-trips exactly;
// * data + metadata of one event may be up to kMaxEventPayloadBytes (a
//   constant, 1 GiB; there is no option to configure it); above it the append
//   is InvalidArgument.
// Every case checks that after the hostile input the other data is intact
// (read back through a fresh store) and the database's tables are unchanged.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "hostile_target.hpp"

namespace gamebot::reliability {
namespace {

using eventstore::EventData;
using eventstore::EventStore;
using eventstore::ExpectedVersion;
using eventstore::InvalidArgument;
using eventstore::ReadStatus;

EventData event(std::string type, std::string data = {}, std::string metadata = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  return e;
}

// Text that ends a string literal or a statement in SQL, or names a parameter.
const std::vector<std::string>& sql_strings() {
  static const std::vector<std::string> strings = {
      "'); DROP TABLE events; --",
      "'); DROP TABLE eventstore_events; --",
      "\"; DROP TABLE eventstore_streams; --",
      "x' OR '1'='1",
      "1; DELETE FROM eventstore_events WHERE 1=1",
      "$$; DROP SCHEMA public CASCADE; $$",
      "' || (SELECT version()) || '",
      "\\'; --",
      "''''",
      "$1",
      "?",
      ":name",
  };
  return strings;
}

// A stream written before the hostile input; must read back exactly afterwards.
struct Bystander {
  std::vector<std::string> tables;

  explicit Bystander(HostileTarget& target) {
    EventStore store = target.open();
    REQUIRE(store
                .append("bystander", ExpectedVersion::no_stream(),
                        {event("Created", "first", "m1"), event("Moved", "second"),
                         event("Finished", "third", "m3")})
                .ok());
    eventstore::Snapshot snapshot;
    snapshot.source_id = "bystander";
    snapshot.source_version = 3;
    snapshot.source_type = "BystanderState";
    snapshot.data = "state";
    store.record_snapshot(snapshot);
    store.backend().store_checkpoint("bystander-projector", "$all", 2, eventstore::kNoLease);
    tables = target.tables();
  }

  void check(HostileTarget& target) const {
    EventStore store = target.open();
    auto read = store.read_stream_forward("bystander");
    REQUIRE(read.status == ReadStatus::ok);
    REQUIRE(read.events.size() == 3);
    CHECK(read.events[0].type == "Created");
    CHECK(read.events[0].data == "first");
    CHECK(read.events[0].metadata == "m1");
    CHECK(read.events[1].data == "second");
    CHECK(read.events[2].data == "third");
    CHECK(read.events[2].stream_version == 3);
    auto snapshot = store.read_snapshot("bystander");
    REQUIRE(snapshot.has_value());
    CHECK(snapshot->data == "state");
    CHECK(store.backend().load_checkpoint("bystander-projector", "$all") == 2);
    CHECK(target.tables() == tables);
  }
};

template <class F>
void require_configuration_error(F&& call) {
  try {
    call();
    FAIL("expected InvalidArgument (configuration)");
  } catch (const InvalidArgument& error) {
    CHECK(error.fault() == FaultClass::configuration);
  }
}

std::string patterned(std::size_t size, unsigned seed) {
  std::string out(size, '\0');
  std::uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

TEST_CASE("stream ids carrying SQL are stored verbatim and leave other data intact",
          "[reliability][hostile]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  {
    EventStore store = target->open();
    for (const std::string& id : sql_strings()) {
      INFO(id);
      REQUIRE(store.append(id, ExpectedVersion::no_stream(), event("Probe", id, id)).ok());
      // The second append must see the stream (the id matched itself, nothing else).
      CHECK(store.append(id, ExpectedVersion::no_stream(), event("Probe")).status ==
            eventstore::WriteStatus::stream_exists);
    }
  }
  EventStore store = target->open();
  for (const std::string& id : sql_strings()) {
    INFO(id);
    auto read = store.read_stream_forward(id);
    REQUIRE(read.status == ReadStatus::ok);
    REQUIRE(read.events.size() == 1);
    CHECK(read.events[0].stream_id == id);
    CHECK(read.events[0].data == id);
    CHECK(read.events[0].metadata == id);
    auto info = store.stream_info(id);
    REQUIRE(info.has_value());
    CHECK(info->stream_id == id);
  }
  auto listed = store.list_streams({.prefix = "", .after_sequence = 0, .limit = 100});
  CHECK(listed.streams.size() == sql_strings().size() + 1);
  CHECK(store.read_all_forward().events.size() == sql_strings().size() + 3);
  bystander.check(*target);
}

TEST_CASE("event types and metadata carrying SQL and quotes round-trip byte for byte",
          "[reliability][hostile]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  std::vector<EventData> batch;
  for (const std::string& text : sql_strings()) {
    batch.push_back(event(text, "data " + text + std::string("\0\"'\\", 4), "meta " + text));
  }
  REQUIRE(target->open().append("typed", ExpectedVersion::no_stream(), batch).ok());

  EventStore store = target->open();
  auto read = store.read_stream_forward("typed");
  REQUIRE(read.events.size() == batch.size());
  auto all = store.read_all_forward(4);
  REQUIRE(all.events.size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    INFO(batch[i].type);
    CHECK(read.events[i].type == batch[i].type);
    CHECK(read.events[i].data == batch[i].data);
    CHECK(read.events[i].metadata == batch[i].metadata);
    CHECK(all.events[i].type == batch[i].type);
    CHECK(all.events[i].data == batch[i].data);
  }
  bystander.check(*target);
}

TEST_CASE("snapshot ids and subscription names carrying SQL are kept apart from others",
          "[reliability][hostile]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  {
    EventStore store = target->open();
    for (const std::string& text : sql_strings()) {
      eventstore::Snapshot snapshot;
      snapshot.source_id = text;
      snapshot.source_version = 1;
      snapshot.source_type = text;
      snapshot.data = text;
      snapshot.metadata = text;
      store.record_snapshot(snapshot);
      store.backend().store_checkpoint(text, text, 7, eventstore::kNoLease);
    }
  }
  EventStore store = target->open();
  for (const std::string& text : sql_strings()) {
    INFO(text);
    auto snapshot = store.read_snapshot(text);
    REQUIRE(snapshot.has_value());
    CHECK(snapshot->source_id == text);
    CHECK(snapshot->source_type == text);
    CHECK(snapshot->data == text);
    CHECK(store.backend().load_checkpoint(text, text) == 7);
  }
  CHECK(store.delete_snapshot(sql_strings().front()));
  CHECK_FALSE(store.read_snapshot(sql_strings().front()).has_value());
  CHECK(store.read_snapshot(sql_strings().back()).has_value());
  bystander.check(*target);
}

TEST_CASE("percent and underscore in stream ids are literal, never LIKE wildcards",
          "[reliability][hostile]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  EventStore store = target->open();
  for (const char* id : {"game_1", "gameX1", "game%2", "gamez", "100%", "1000", "a\\_b", "a_b"}) {
    REQUIRE(store.append(id, ExpectedVersion::no_stream(), event("Created", id)).ok());
  }
  auto ids_with_prefix = [&](std::string prefix) {
    std::vector<std::string> ids;
    for (const auto& info :
         store.list_streams({.prefix = prefix, .after_sequence = 0, .limit = 100}).streams) {
      ids.push_back(info.stream_id);
    }
    return ids;
  };
  CHECK(ids_with_prefix("game_") == std::vector<std::string>{"game_1"});
  CHECK(ids_with_prefix("game%") == std::vector<std::string>{"game%2"});
  CHECK(ids_with_prefix("100%") == std::vector<std::string>{"100%"});
  CHECK(ids_with_prefix("a\\_") == std::vector<std::string>{"a\\_b"});
  CHECK(ids_with_prefix("%").empty());
  CHECK(ids_with_prefix("_").empty());
  CHECK(store.read_stream_forward("game_").status == ReadStatus::stream_not_found);
  CHECK(store.read_stream_forward("game%").status == ReadStatus::stream_not_found);
  CHECK_FALSE(store.stream_info("%").has_value());
  bystander.check(*target);
}

TEST_CASE("stream ids and event types at the 512-byte limit are accepted, one byte more is not",
          "[reliability][hostile][limits]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  EventStore store = target->open();
  const std::string longest = std::string(510, 'a') + "\xC3\xA9";           // 512 bytes, ends in é
  const std::string too_long = std::string(509, 'a') + "\xF0\x9F\x8E\xB2";  // 513 bytes, ends in 🎲
  REQUIRE(longest.size() == eventstore::kMaxStreamIdBytes);
  REQUIRE(too_long.size() == eventstore::kMaxStreamIdBytes + 1);

  REQUIRE(store.append(longest, ExpectedVersion::no_stream(), event(longest, "x")).ok());
  auto read = target->open().read_stream_forward(longest);
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].stream_id == longest);
  CHECK(read.events[0].type == longest);

  const auto head = store.head_position();
  require_configuration_error([&] { store.append(too_long, ExpectedVersion::any(), event("E")); });
  require_configuration_error([&] { store.append("s", ExpectedVersion::any(), event(too_long)); });
  require_configuration_error([&] { store.read_stream_forward(too_long); });
  CHECK(store.head_position() == head);
  CHECK_FALSE(store.stream_info("s").has_value());
  bystander.check(*target);
}

TEST_CASE("invalid UTF-8 or NUL in a stream id or event type is a configuration error",
          "[reliability][hostile][utf8]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  EventStore store = target->open();
  const std::vector<std::string> invalid = {
      std::string("bad\xC3\x28", 5),       // 2-byte lead, bad continuation
      std::string("\xA0\xA1", 2),          // lone continuation bytes
      std::string("\xC0\xAF", 2),          // overlong '/'
      std::string("\xED\xA0\x80", 3),      // UTF-16 surrogate
      std::string("\xF4\x90\x80\x80", 4),  // above U+10FFFF
      std::string("cut\xE2\x82", 5),       // truncated sequence
      std::string("\xFF\xFE", 2),          // never valid
      std::string("nul\0inside", 10),      // NUL
      std::string(""),                     // empty
  };
  const auto head = store.head_position();
  for (const std::string& text : invalid) {
    INFO(Catch::Detail::stringify(text));
    require_configuration_error(
        [&] { store.append(text, ExpectedVersion::any(), event("Valid")); });
    require_configuration_error(
        [&] { store.append("valid", ExpectedVersion::any(), event(text)); });
    // One bad event spoils the whole batch: nothing of it is written.
    require_configuration_error([&] {
      store.append("valid", ExpectedVersion::any(), {event("Good"), event(text), event("Good")});
    });
    require_configuration_error([&] { store.read_stream_forward(text); });
    eventstore::Snapshot snapshot;
    snapshot.source_id = text;
    snapshot.source_type = "State";
    require_configuration_error([&] { store.record_snapshot(snapshot); });
  }
  CHECK(store.head_position() == head);
  CHECK_FALSE(store.stream_info("valid").has_value());
  bystander.check(*target);
}

TEST_CASE("data and metadata are bytes: invalid UTF-8, NUL and every byte value round-trip",
          "[reliability][hostile][utf8]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  const std::string invalid_utf8("\xC3\x28\xED\xA0\x80\xFF\0\xC0\xAF", 9);
  REQUIRE(target->open()
              .append("bytes", ExpectedVersion::no_stream(),
                      {event("EveryByte", every_byte, invalid_utf8), event("Empty", "", ""),
                       event("Invalid", invalid_utf8, every_byte)})
              .ok());
  auto read = target->open().read_stream_forward("bytes");
  REQUIRE(read.events.size() == 3);
  CHECK(read.events[0].data == every_byte);
  CHECK(read.events[0].metadata == invalid_utf8);
  CHECK(read.events[1].data.empty());
  CHECK(read.events[1].metadata.empty());
  CHECK(read.events[2].data == invalid_utf8);
  CHECK(read.events[2].metadata == every_byte);
  bystander.check(*target);
}

TEST_CASE("a 64 MiB payload is stored and read back intact", "[reliability][hostile][limits]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  const std::string data = patterned(std::size_t{48} << 20, 1);
  const std::string metadata = patterned(std::size_t{16} << 20, 2);
  REQUIRE(target->open()
              .append("large", ExpectedVersion::no_stream(),
                      {event("Small", "before"), event("Large", data, metadata),
                       event("Small", "after")})
              .ok());
  auto read = target->open().read_stream_forward("large");
  REQUIRE(read.events.size() == 3);
  CHECK(read.events[0].data == "before");
  CHECK(read.events[1].data.size() == data.size());
  CHECK(read.events[1].data == data);
  CHECK(read.events[1].metadata == metadata);
  CHECK(read.events[2].data == "after");
  bystander.check(*target);
}

TEST_CASE("a payload above kMaxEventPayloadBytes is a configuration error and writes nothing",
          "[reliability][hostile][limits]") {
  auto target = make_hostile_target();
  Bystander bystander(*target);
  EventStore store = target->open();
  const auto head = store.head_position();
  {
    // data + metadata = the limit + 1 byte (the limit is 1 GiB, a constant).
    const std::string data(eventstore::kMaxEventPayloadBytes - 10, 'x');
    const std::string metadata(11, 'm');
    require_configuration_error([&] {
      store.append("huge", ExpectedVersion::any(), {event("Small"), event("Huge", data, metadata)});
    });
  }
  CHECK(store.head_position() == head);
  CHECK_FALSE(store.stream_info("huge").has_value());
  bystander.check(*target);
}

}  // namespace
}  // namespace gamebot::reliability
