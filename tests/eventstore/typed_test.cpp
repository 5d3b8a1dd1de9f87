// The typed layer over gamebot::serializers: encode on append, decode on read,
// upcasting, verification on append, and decode failures as serialization faults.

#include <catch2/catch.hpp>
#include <cereal/types/string.hpp>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
namespace ser = gamebot::serializers;

struct GameStarted {
  std::string game_id;
  int players = 0;
  bool operator==(const GameStarted&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(players));
  }
};

struct GuessMade {
  std::string game_id;
  std::string word;
  int round = 0;
  bool operator==(const GuessMade&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(word), CEREAL_NVP(round));
  }
};

// Version 1 of guess_made, before rounds existed.
struct GuessMadeV1 {
  std::string game_id;
  std::string word;
  bool operator==(const GuessMadeV1&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(word));
  }
};

// Reads back something else than it wrote.
struct Lossy {
  int value = 0;
  bool operator==(const Lossy&) const = default;
  template <class Archive>
  void save(Archive& ar) const {
    ar(CEREAL_NVP(value));
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(CEREAL_NVP(value));
    value += 1;
  }
};

struct Unregistered {
  int x = 0;
};

ser::TypeRegistry current_registry() {
  ser::TypeRegistry registry;
  registry.register_type<GameStarted>("game_started", 1, {{"g-1", 2}, {"", 0}});
  registry.register_type<GuessMade>("guess_made", 2, {{"g-1", "apple", 3}});
  registry.add_upcaster<GuessMadeV1>("guess_made", 1,
                                     [](GuessMadeV1 old) {
                                       return GuessMade{old.game_id, old.word, 1};
                                     },
                                     {{"g-1", "pear"}});
  registry.register_type<Lossy>("lossy", 1, {{1}});
  return registry;
}

struct TypedFixture {
  EventStore store = open("memory:");
  ser::TypeRegistry registry = current_registry();
};

TEST_CASE("typed values round-trip through both codecs", "[eventstore][typed]") {
  TypedFixture f;
  for (ser::Codec codec : ser::all_codecs) {
    INFO("codec " << ser::to_string(codec));
    TypedEventStore typed(f.store, f.registry, TypedStoreOptions{codec, false});
    const std::string stream = "game-" + std::string(ser::to_string(codec));
    const Uuid causation = Uuid::v7();
    TypedEventData started{GameStarted{"g-7", 3}, "meta", {}, causation, {}, {}};
    TypedEventData guess{GuessMade{"g-7", "z\xC3\xBCrich", 2}, {}, {}, {}, {}, {}};
    REQUIRE(typed.append(stream, 0, {started, guess}).ok());
    REQUIRE(typed.append_value(stream, 2, GuessMade{"g-7", "", 3}).ok());

    const TypedReadResult read = typed.read_stream_forward(stream);
    REQUIRE(read.ok());
    REQUIRE(read.events.size() == 3);
    CHECK(read.events[0].is<GameStarted>());
    CHECK(read.events[0].get<GameStarted>() == GameStarted{"g-7", 3});
    CHECK(read.events[0].recorded.type == "game_started@v1");
    CHECK(read.events[0].recorded.metadata == "meta");
    CHECK(read.events[0].recorded.causation_id == causation);
    CHECK(read.events[1].get<GuessMade>() == GuessMade{"g-7", "z\xC3\xBCrich", 2});
    CHECK(read.events[1].recorded.type == typed.type_of<GuessMade>());
    CHECK(read.events[2].get<GuessMade>().round == 3);
    const char first = read.events[0].recorded.data.front();
    CHECK((codec == ser::Codec::json ? first == '{' : (first == '\x00' || first == '\x01')));
    CHECK(typed.read_stream_backward(stream, kLatest, 1).events.at(0).get<GuessMade>().round == 3);
  }
  // One store may hold both encodings; $all decodes each by its bytes.
  TypedEventStore typed(f.store, f.registry);
  const TypedReadResult all = typed.read_all_forward();
  REQUIRE(all.events.size() == 6);
  CHECK(all.events[3].get<GameStarted>() == GameStarted{"g-7", 3});
  CHECK(typed.read_all_backward(kLatest, 2).events.size() == 2);
}

TEST_CASE("older versions are upcast when read", "[eventstore][typed][upcast]") {
  TypedFixture f;
  ser::TypeRegistry old_registry;
  old_registry.register_type<GuessMadeV1>("guess_made", 1, {{"g", "w"}});
  TypedEventStore old_writer(f.store, old_registry);
  REQUIRE(old_writer.append_value("game-1", 0, GuessMadeV1{"g-1", "plum"}).ok());
  TypedEventStore reader(f.store, f.registry);
  const TypedReadResult read = reader.read_stream_forward("game-1");
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].recorded.type == "guess_made@v1");
  CHECK(read.events[0].value.was_upcast());
  CHECK(read.events[0].get<GuessMade>() == GuessMade{"g-1", "plum", 1});
  CHECK(reader.decode_as<GuessMade>(read.events[0].recorded).word == "plum");
}

template <typename F>
EventDecodeError decode_error(F&& call) {
  try {
    call();
  } catch (const EventDecodeError& error) {
    return error;
  }
  FAIL("no EventDecodeError");
  throw std::logic_error("unreachable");
}

TEST_CASE("a stored event that does not decode is a serialization fault naming its stream",
          "[eventstore][typed][errors]") {
  TypedFixture f;
  TypedEventStore typed(f.store, f.registry);
  const std::vector<std::pair<std::string, std::string>> broken = {
      {"guess_made@v2", R"({"value0": {"game_id": "g-9", "word": 5}})"},  // wrong field type
      {"guess_made@v2", "{not json"},
      {"guess_made@v2", std::string("\x01\x02", 2)},  // truncated binary
      {"guess_made@v2", "plain text"},                // neither codec
      {"guess_made@v2", ""},
      {"guess_made@v9", R"({"value0": {}})"},  // a version from the future
      {"no_such_type@v1", R"({"value0": {}})"},
      {"NoVersionTag", R"({"value0": {}})"},
  };
  for (std::size_t i = 0; i < broken.size(); ++i) {
    const auto& [type, data] = broken[i];
    INFO("stored type " << type << ", data " << data);
    const std::string stream = "game-" + std::to_string(i);
    REQUIRE(typed.append_value(stream, 0, GameStarted{"g-9", 1}).ok());
    EventData raw;
    raw.type = type;
    raw.data = data;
    const AppendResult appended = f.store.append(stream, 1, raw);
    REQUIRE(appended.ok());
    const EventDecodeError error = decode_error([&] { typed.read_stream_forward(stream); });
    CHECK(error.fault() == FaultClass::serialization);
    CHECK(error.stream_id() == stream);
    CHECK(error.stream_version() == 2);
    CHECK(error.global_position() == appended.first_position);
    CHECK(error.stored_type() == type);
    CHECK_THAT(error.what(), Catch::Contains(stream) && Catch::Contains(type));
    CHECK_THAT(error.what(), Catch::StartsWith("serialization: "));
    // Read raw, the event is fine; only decoding fails, and the good one still decodes.
    CHECK(f.store.read_stream_backward(stream, kLatest, 1).events.at(0).data == data);
    CHECK(typed.read_stream_forward(stream, 1, 1).events.at(0).is<GameStarted>());
  }
}

TEST_CASE("decode_as a different type is a serialization fault", "[eventstore][typed][errors]") {
  TypedFixture f;
  TypedEventStore typed(f.store, f.registry);
  REQUIRE(typed.append_value("g", 0, GameStarted{"g", 1}).ok());
  const RecordedEvent e = f.store.read_stream_forward("g").events.at(0);
  CHECK(typed.holds<GameStarted>(e));
  CHECK_FALSE(typed.holds<GuessMade>(e));
  const EventDecodeError error = decode_error([&] { typed.decode_as<GuessMade>(e); });
  CHECK(error.kind() == ser::SerializationErrorKind::type_mismatch);
}

TEST_CASE("verify_on_append catches an asymmetric serializer before anything is written",
          "[eventstore][typed][verify]") {
  TypedFixture f;
  TypedEventStore trusting(f.store, f.registry);
  REQUIRE(trusting.append_value("l", 0, Lossy{5}).ok());  // not checked: stored as is
  CHECK(trusting.read_stream_forward("l").events.at(0).get<Lossy>().value == 6);

  for (ser::Codec codec : ser::all_codecs) {
    TypedEventStore verifying(f.store, f.registry, TypedStoreOptions{codec, true});
    CHECK(verifying.append_value("v", ExpectedVersion::any(), GameStarted{"ok", 1}).ok());
    try {
      verifying.append("v", ExpectedVersion::any(),
                       {TypedEventData{GameStarted{"a", 1}, {}, {}, {}, {}, {}},
                        TypedEventData{Lossy{5}, {}, {}, {}, {}, {}}});
      FAIL("a lossy value was appended");
    } catch (const ser::SerializationError& error) {
      CHECK(error.fault() == FaultClass::serialization);
      CHECK(error.type_name() == "lossy");
    }
  }
  CHECK(f.store.stream_info("v")->version == 2);  // the refused batches left nothing
}

TEST_CASE("unregistered values are refused before anything is written",
          "[eventstore][typed][errors]") {
  TypedFixture f;
  TypedEventStore typed(f.store, f.registry);
  try {
    typed.append("s", ExpectedVersion::any(),
                 {TypedEventData{GameStarted{"a", 1}, {}, {}, {}, {}, {}},
                  TypedEventData{Unregistered{1}, {}, {}, {}, {}, {}}});
    FAIL("an unregistered value was appended");
  } catch (const ser::SerializationError& error) {
    CHECK(error.kind() == ser::SerializationErrorKind::unregistered_type);
  }
  CHECK(f.store.head_position() == 0);
}

TEST_CASE("wait_for finds a typed event on a subscription", "[eventstore][typed][subscription]") {
  TypedFixture f;
  TypedEventStore typed(f.store, f.registry);
  Subscription sub = f.store.subscribe_persistent("typed", std::string(kAllStream));
  REQUIRE(typed
              .append("g", 0,
                      {TypedEventData{GameStarted{"g", 2}, {}, {}, {}, {}, {}},
                       TypedEventData{GuessMade{"g", "no", 1}, {}, {}, {}, {}, {}},
                       TypedEventData{GuessMade{"g", "yes", 2}, {}, {}, {}, {}, {}}})
              .ok());
  EventData raw;
  raw.type = "NotTyped";
  REQUIRE(f.store.append("g", 3, raw).ok());
  const auto found = typed.wait_for<GuessMade>(
      sub, [](const GuessMade& g) { return g.word == "yes"; }, 5s);
  REQUIRE(found.has_value());
  CHECK(found->round == 2);
  sub.ack(3);
  CHECK(sub.checkpoint() == 3);
  CHECK_FALSE(typed.wait_for<GameStarted>(sub, {}, 100ms).has_value());
}

}  // namespace
}  // namespace gamebot::eventstore
