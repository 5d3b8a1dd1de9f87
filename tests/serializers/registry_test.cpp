#include <catch2/catch.hpp>
#include <string>

#include "gamebot/serializers/serializers.hpp"
#include "test_events.hpp"

using namespace gamebot;
using namespace gamebot::serializers;
using namespace gamebot::test_events;

namespace {

struct Unregistered {
  int x = 0;
  bool operator==(const Unregistered&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(x));
  }
};

template <class F>
SerializationError capture(F&& f) {
  try {
    f();
  } catch (const SerializationError& e) {
    return e;
  }
  FAIL("expected a SerializationError");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("registered types are found by name and by C++ type", "[serializers][registry]") {
  const TypeRegistry registry = make_game_registry();
  REQUIRE(registry.size() == 3);

  const TypeInfo* by_name = registry.find("guess_processed");
  REQUIRE(by_name != nullptr);
  CHECK(by_name->version() == 2);
  CHECK(by_name->type() == typeid(GuessProcessed));
  CHECK(by_name->samples().size() == guess_processed_samples().size());
  CHECK(registry.find<GuessProcessed>() == by_name);
  CHECK(&registry.at<PlayerJoined>() == registry.find("player_joined"));
  CHECK(registry.find("nope") == nullptr);
  CHECK(registry.find<Unregistered>() == nullptr);

  // Registration order is kept for reports.
  REQUIRE(registry.types().size() == 3);
  CHECK(registry.types()[0]->name() == "game_created");
  CHECK(registry.types()[2]->name() == "guess_processed");
}

TEST_CASE("registering a name twice names both C++ types", "[serializers][registry]") {
  TypeRegistry registry = make_game_registry();
  const SerializationError error =
      capture([&] { registry.register_type<Unregistered>("player_joined", 1, {Unregistered{}}); });
  CHECK(error.kind() == SerializationErrorKind::duplicate_name);
  CHECK(error.fault() == FaultClass::serialization);
  CHECK(error.type_name() == "player_joined");
  CHECK_THAT(error.what(), Catch::Contains("PlayerJoined") && Catch::Contains("Unregistered"));
  CHECK(registry.find("player_joined")->type() == typeid(PlayerJoined));
}

TEST_CASE("registering a type under a second name names both names", "[serializers][registry]") {
  TypeRegistry registry = make_game_registry();
  const SerializationError error = capture(
      [&] { registry.register_type<PlayerJoined>("player_entered", 1, player_joined_samples()); });
  CHECK(error.kind() == SerializationErrorKind::duplicate_type);
  CHECK_THAT(error.what(), Catch::Contains("'player_joined'") &&
                               Catch::Contains("'player_entered'") &&
                               Catch::Contains("PlayerJoined"));
  CHECK(registry.find("player_entered") == nullptr);

  // An upcaster's old type is taken too.
  const SerializationError old_type = capture([&] {
    registry.register_type<GuessProcessedV1>("guess_v1", 1, guess_processed_v1_samples());
  });
  CHECK(old_type.kind() == SerializationErrorKind::duplicate_type);
  CHECK_THAT(old_type.what(), Catch::Contains("guess_processed@v1"));
}

TEST_CASE("registration rejects bad names, version 0 and missing samples",
          "[serializers][registry]") {
  TypeRegistry registry;
  for (const std::string& bad : std::vector<std::string>{
           "", "has space", "slash/name", "at@v1", ".hidden", "-dash", std::string(129, 'a')}) {
    const SerializationError error =
        capture([&] { registry.register_type<Unregistered>(bad, 1, {Unregistered{}}); });
    CHECK(error.kind() == SerializationErrorKind::invalid_registration);
  }
  CHECK(capture([&] { registry.register_type<Unregistered>("ok", 0, {Unregistered{}}); }).kind() ==
        SerializationErrorKind::invalid_registration);
  const SerializationError no_samples =
      capture([&] { registry.register_type<Unregistered>("ok", 1, {}); });
  CHECK(no_samples.kind() == SerializationErrorKind::invalid_registration);
  CHECK_THAT(no_samples.what(), Catch::Contains("sample"));
  CHECK(registry.empty());
  registry.register_type<Unregistered>("Elixir.GameBot.Events-v.1_x", 1, {Unregistered{}});
  CHECK(registry.size() == 1);
}

TEST_CASE("an unknown name suggests the closest registered names", "[serializers][registry]") {
  const TypeRegistry registry = make_game_registry();
  const SerializationError typo = capture([&] { (void)registry.at("guess_procesed"); });
  CHECK(typo.kind() == SerializationErrorKind::unknown_type);
  CHECK(typo.fault() == FaultClass::serialization);
  REQUIRE_FALSE(typo.suggestions().empty());
  CHECK(typo.suggestions().front() == "guess_processed");
  CHECK_THAT(typo.what(), Catch::Contains("closest registered: guess_processed"));

  const auto close = registry.closest_names("player_join");
  REQUIRE(close.size() == 1);
  CHECK(close[0] == "player_joined");

  // Nothing close: the message lists what is registered instead.
  const SerializationError far = capture([&] { (void)registry.at("zzzzzzzzzzzzzzzzzzzz"); });
  CHECK(far.suggestions().empty());
  CHECK_THAT(far.what(), Catch::Contains("registered: game_created, player_joined"));

  const SerializationError decode =
      capture([&] { (void)registry.decode("game_creatd", 1, Codec::json, "{}"); });
  CHECK(decode.kind() == SerializationErrorKind::unknown_type);
  CHECK(decode.suggestions() == std::vector<std::string>{"game_created"});
}

TEST_CASE("encoding an unregistered C++ type is a typed error", "[serializers][registry]") {
  const TypeRegistry registry = make_game_registry();
  const SerializationError error =
      capture([&] { (void)registry.encode(Unregistered{}, Codec::binary); });
  CHECK(error.kind() == SerializationErrorKind::unregistered_type);
  CHECK_THAT(error.what(), Catch::Contains("Unregistered"));
  CHECK(capture([&] { (void)registry.encode_any(std::any(), Codec::json); }).kind() ==
        SerializationErrorKind::unregistered_type);
  CHECK(capture([&] { (void)registry.encode_any(std::any(Unregistered{}), Codec::json); }).kind() ==
        SerializationErrorKind::unregistered_type);
}

TEST_CASE("type tags format and parse name and version", "[serializers][registry]") {
  CHECK(format_type_tag("guess_processed", 2) == "guess_processed@v2");
  const TypeTag tag = parse_type_tag("guess_processed@v12");
  CHECK(tag.name == "guess_processed");
  CHECK(tag.version == 12);
  for (const char* bad : {"guess_processed", "guess_processed@v", "guess_processed@v0",
                          "guess_processed@v01", "@v1", "a b@v1", "x@v1x", "x@v99999999999"}) {
    CHECK_THROWS_AS(parse_type_tag(bad), SerializationError);
  }
}

TEST_CASE("a moved registry keeps its types", "[serializers][registry]") {
  TypeRegistry first = make_game_registry();
  const TypeInfo* info = first.find("player_joined");
  TypeRegistry second = std::move(first);
  CHECK(second.find("player_joined") == info);
  const auto encoded = second.encode(player_joined_samples()[0], Codec::json);
  CHECK(second.decode<PlayerJoined>(encoded) == player_joined_samples()[0]);
}
