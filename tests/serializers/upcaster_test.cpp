#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "gamebot/serializers/serializers.hpp"
#include "test_events.hpp"

using namespace gamebot;
using namespace gamebot::serializers;
using namespace gamebot::test_events;

namespace {

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

// score_recorded: v1 had points as a string, v2 an integer, v3 adds a bonus.
struct ScoreV1 {
  std::string points;
  bool operator==(const ScoreV1&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(points));
  }
};
struct ScoreV2 {
  int points = 0;
  bool operator==(const ScoreV2&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(points));
  }
};
struct Score {
  int points = 0;
  int bonus = 0;
  bool operator==(const Score&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(points), CEREAL_NVP(bonus));
  }
};

ScoreV2 score_v1_to_v2(ScoreV1 old) {
  return ScoreV2{std::stoi(old.points)};
}
Score score_v2_to_v3(ScoreV2 old) {
  return Score{old.points, old.points >= 10 ? 1 : 0};
}

template <class T>
std::string encode_raw(const T& value, Codec codec) {
  // Old bytes as the old code wrote them: the old type registered as current.
  TypeRegistry old_registry;
  old_registry.register_type<T>("score_recorded", 1, {value});
  return old_registry.encode(value, codec).bytes;
}

}  // namespace

TEST_CASE("v1 bytes of guess_processed decode as v2 through the upcaster",
          "[serializers][upcaster]") {
  const TypeRegistry registry = make_game_registry();
  TypeRegistry v1_registry;
  v1_registry.register_type<GuessProcessedV1>("guess_processed", 1, guess_processed_v1_samples());
  for (Codec codec : all_codecs) {
    for (const GuessProcessedV1& old : guess_processed_v1_samples()) {
      const Encoded v1 = v1_registry.encode(old, codec);
      REQUIRE(v1.version == 1);
      const GuessProcessed typed = registry.decode<GuessProcessed>(v1);
      CHECK(typed == upcast_guess_v1(old));
      const DecodedValue erased = registry.decode(v1);
      CHECK(erased.was_upcast());
      CHECK(erased.source_version() == 1);
      CHECK(erased.version() == 2);
      CHECK(erased.get<GuessProcessed>() == typed);
    }
  }
  const TypeInfo& info = registry.at("guess_processed");
  CHECK(info.upcast_versions() == std::vector<std::uint32_t>{1});
  REQUIRE(info.upcaster(1) != nullptr);
  CHECK(info.upcaster(1)->samples.size() == 2);
}

TEST_CASE("a chain of upcasters runs from the oldest version to the current one",
          "[serializers][upcaster]") {
  TypeRegistry registry;
  registry.register_type<Score>("score_recorded", 3, {Score{12, 1}});
  // Registered newest first: the chain is checked whichever order is used.
  registry.add_upcaster<ScoreV2>("score_recorded", 2, &score_v2_to_v3, {ScoreV2{3}});
  registry.add_upcaster<ScoreV1>("score_recorded", 1, &score_v1_to_v2, {ScoreV1{"12"}});
  for (Codec codec : all_codecs) {
    CHECK(registry.decode<Score>("score_recorded", 1, codec, encode_raw(ScoreV1{"12"}, codec)) ==
          Score{12, 1});
    CHECK(registry.decode<Score>("score_recorded", 2, codec, encode_raw(ScoreV2{4}, codec)) ==
          Score{4, 0});
    CHECK(registry.decode<Score>("score_recorded", 3, codec, encode_raw(Score{5, 6}, codec)) ==
          Score{5, 6});
  }
}

TEST_CASE("upcaster registration errors say what does not line up", "[serializers][upcaster]") {
  TypeRegistry registry;
  CHECK_THAT(
      capture([&] { registry.add_upcaster<ScoreV1>("score_recorded", 1, &score_v1_to_v2); }).what(),
      Catch::Contains("register the current version of the type before its upcasters"));
  registry.register_type<Score>("score_recorded", 3, {Score{}});

  const SerializationError too_new =
      capture([&] { registry.add_upcaster<ScoreV2>("score_recorded", 3, &score_v2_to_v3); });
  CHECK(too_new.kind() == SerializationErrorKind::invalid_registration);
  CHECK_THAT(too_new.what(), Catch::Contains("from 1 to 2"));

  // v2 -> v3 must return the current type.
  const SerializationError wrong_result = capture([&] {
    registry.add_upcaster<ScoreV2>("score_recorded", 2,
                                   [](ScoreV2 v) { return ScoreV1{std::to_string(v.points)}; });
  });
  CHECK_THAT(wrong_result.what(), Catch::Contains("returns") && Catch::Contains("ScoreV1") &&
                                      Catch::Contains("v3 is") && Catch::Contains("Score"));

  registry.add_upcaster<ScoreV2>("score_recorded", 2, &score_v2_to_v3);
  CHECK_THAT(capture([&] {
               registry.add_upcaster<ScoreV1>("score_recorded", 2, [](ScoreV1) { return Score{}; });
             }).what(),
             Catch::Contains("already registered"));

  // v1 -> v2 must return what the v2 upcaster takes.
  const SerializationError mismatch = capture([&] {
    registry.add_upcaster<ScoreV1>("score_recorded", 1, [](ScoreV1) { return Score{}; });
  });
  CHECK_THAT(mismatch.what(), Catch::Contains("v2 is") && Catch::Contains("ScoreV2"));

  // The current type cannot be an old version too.
  const SerializationError reused = capture([&] {
    registry.add_upcaster<Score>("score_recorded", 1, [](Score s) { return ScoreV2{s.points}; });
  });
  CHECK(reused.kind() == SerializationErrorKind::duplicate_type);
}

TEST_CASE("bytes of versions without a path to the current one are unsupported",
          "[serializers][upcaster]") {
  TypeRegistry registry;
  registry.register_type<Score>("score_recorded", 3, {Score{}});
  registry.add_upcaster<ScoreV1>("score_recorded", 1, &score_v1_to_v2);  // no v2 -> v3
  const std::string v1 = encode_raw(ScoreV1{"1"}, Codec::json);

  const SerializationError gap =
      capture([&] { (void)registry.decode<Score>("score_recorded", 1, Codec::json, v1); });
  CHECK(gap.kind() == SerializationErrorKind::unsupported_version);
  CHECK_THAT(gap.what(), Catch::Contains("breaks at v2"));

  const SerializationError newer =
      capture([&] { (void)registry.decode("score_recorded", 4, Codec::json, v1); });
  CHECK(newer.kind() == SerializationErrorKind::unsupported_version);
  CHECK_THAT(newer.what(), Catch::Contains("newer than the registered v3"));

  const SerializationError none =
      capture([&] { (void)registry.decode("score_recorded", 2, Codec::json, v1); });
  CHECK_THAT(none.what(), Catch::Contains("no upcaster from v2"));
  CHECK(capture([&] { (void)registry.decode("score_recorded", 0, Codec::json, v1); }).kind() ==
        SerializationErrorKind::unsupported_version);
}

TEST_CASE("a throwing upcaster and malformed old bytes are typed errors",
          "[serializers][upcaster]") {
  TypeRegistry registry;
  registry.register_type<ScoreV2>("score_recorded", 2, {ScoreV2{}});
  registry.add_upcaster<ScoreV1>("score_recorded", 1, &score_v1_to_v2);  // std::stoi throws
  for (Codec codec : all_codecs) {
    const SerializationError bad_value = capture([&] {
      (void)registry.decode("score_recorded", 1, codec, encode_raw(ScoreV1{"many"}, codec));
    });
    CHECK(bad_value.kind() == SerializationErrorKind::upcast_failed);
    CHECK(bad_value.version() == 1u);
    CHECK_THAT(bad_value.what(), Catch::Contains("v1 -> v2 threw"));

    const std::string v1 = encode_raw(ScoreV1{"7"}, codec);
    const SerializationError truncated = capture([&] {
      (void)registry.decode("score_recorded", 1, codec, std::string_view(v1).substr(0, 3));
    });
    CHECK(truncated.kind() == SerializationErrorKind::malformed_input);
    CHECK(truncated.version() == 1u);
    CHECK(registry.decode<ScoreV2>("score_recorded", 1, codec, v1) == ScoreV2{7});
  }
}
