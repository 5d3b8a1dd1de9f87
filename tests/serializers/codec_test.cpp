// clang-format off
// gamebot/serializers first: cereal must configure rapidjson before it is included.
#include "gamebot/serializers/serializers.hpp"
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
// clang-format on

#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>

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

// Strict RFC 8259 JSON: valid UTF-8, no NaN/Infinity extensions.
std::string strict_json_error(const std::string& text) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (!document.HasParseError()) return {};
  return std::string(rapidjson::GetParseError_En(document.GetParseError())) + " at " +
         std::to_string(document.GetErrorOffset());
}

struct Measurement {
  std::string label;
  double value = 0;
  bool operator==(const Measurement&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(label), CEREAL_NVP(value));
  }
};

struct Flag {
  bool on = false;
  bool operator==(const Flag&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(on);
  }
};

struct Picky {
  int value = 0;
  bool operator==(const Picky&) const = default;
  template <class Archive>
  void save(Archive& ar) const {
    if (value < 0) throw std::domain_error("negative values are not allowed");
    ar(CEREAL_NVP(value));
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(CEREAL_NVP(value));
    if (value > 100) throw std::out_of_range("value above 100");
  }
};

// Throws from the middle of a nested object, after some of it was written.
struct Inner {
  int a = 0;
  int b = 0;
  bool operator==(const Inner&) const = default;
  template <class Archive>
  void save(Archive& ar) const {
    ar(CEREAL_NVP(a));
    if (b < 0) throw std::invalid_argument("b must not be negative");
    ar(CEREAL_NVP(b));
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(CEREAL_NVP(a), CEREAL_NVP(b));
  }
};
struct Outer {
  std::vector<Inner> items;
  bool operator==(const Outer&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(items));
  }
};

TypeRegistry measurement_registry() {
  TypeRegistry registry;
  registry.register_type<Measurement>("measurement", 1, {Measurement{"x", 1.5}});
  return registry;
}

template <class T>
std::string cereal_binary(const T& value,
                          cereal::PortableBinaryOutputArchive::Options options =
                              cereal::PortableBinaryOutputArchive::Options::LittleEndian()) {
  std::ostringstream out;
  {
    cereal::PortableBinaryOutputArchive archive(out, options);
    archive(value);
  }
  return out.str();
}

}  // namespace

TEST_CASE("every sample round-trips through JSON as strict JSON", "[serializers][codec][json]") {
  const TypeRegistry registry = make_game_registry();
  for (const GameCreated& sample : game_created_samples()) {
    const Encoded encoded = registry.encode(sample, Codec::json);
    CHECK(encoded.type == "game_created");
    CHECK(encoded.version == 1);
    CHECK(encoded.codec == Codec::json);
    CHECK(strict_json_error(encoded.bytes).empty());
    CHECK(registry.decode<GameCreated>(encoded) == sample);
  }
  for (const GuessProcessed& sample : guess_processed_samples()) {
    const Encoded encoded = registry.encode(sample, Codec::json);
    INFO(encoded.bytes);
    CHECK(strict_json_error(encoded.bytes).empty());
    CHECK(registry.decode<GuessProcessed>(encoded) == sample);
  }
  for (const PlayerJoined& sample : player_joined_samples()) {
    const Encoded encoded = registry.encode(sample, Codec::json);
    CHECK(strict_json_error(encoded.bytes).empty());
    CHECK(registry.decode<PlayerJoined>(encoded) == sample);
  }
}

TEST_CASE("64-bit integer extremes are written as plain JSON numbers",
          "[serializers][codec][json]") {
  const TypeRegistry registry = make_game_registry();
  const Encoded encoded = registry.encode(game_created_samples()[1], Codec::json);
  CHECK_THAT(encoded.bytes, Catch::Contains("\"seed\": 18446744073709551615") &&
                                Catch::Contains("\"created_at_ms\": -9223372036854775808") &&
                                Catch::Contains("\"max_players\": 4294967295"));
  // Unicode stays UTF-8 (jsonb keeps it as is), quotes and control characters are escaped.
  CHECK_THAT(encoded.bytes, Catch::Contains("Zoë — 日本語 🎲 \\\"quoted\\\" \\\\ \\n tab\\t"));
}

TEST_CASE("NaN and infinities are rejected by the JSON codec with their JSON path",
          "[serializers][codec][json]") {
  const TypeRegistry registry = measurement_registry();
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    const SerializationError error = capture([&] {
      (void)registry.encode(Measurement{"NaN Infinity", bad}, Codec::json);
    });
    CHECK(error.kind() == SerializationErrorKind::unrepresentable);
    CHECK(error.type_name() == "measurement");
    CHECK(error.codec() == Codec::json);
    CHECK(error.json_path() == "$.value0.value");
    CHECK_THAT(error.what(), Catch::Contains("not representable in JSON"));
  }
  // The binary codec carries them.
  const Encoded binary =
      registry.encode(Measurement{"inf", std::numeric_limits<double>::infinity()}, Codec::binary);
  CHECK(std::isinf(registry.decode<Measurement>(binary).value));
}

TEST_CASE("text that merely looks like NaN or escapes stays encodable",
          "[serializers][codec][json]") {
  const TypeRegistry registry = measurement_registry();
  for (const std::string& label :
       std::vector<std::string>{"NaN", "Infinity", "-Infinity", "\\u0000", "x\\", "\"NaN\"",
                                std::string(40, 'N') + "aN", "tab\tNaN"}) {
    const Encoded encoded = registry.encode(Measurement{label, 2.0}, Codec::json);
    CHECK(strict_json_error(encoded.bytes).empty());
    CHECK(registry.decode<Measurement>(encoded).label == label);
  }
}

TEST_CASE("U+0000 and invalid UTF-8 in strings are rejected by the JSON codec",
          "[serializers][codec][json]") {
  const TypeRegistry registry = make_game_registry();
  PlayerJoined nul{"g", 1, std::string("a\0b", 3), 0};
  const SerializationError with_nul = capture([&] { (void)registry.encode(nul, Codec::json); });
  CHECK(with_nul.kind() == SerializationErrorKind::unrepresentable);
  CHECK(with_nul.json_path() == "$.value0.display_name");
  CHECK_THAT(with_nul.what(), Catch::Contains("U+0000"));

  for (const std::string& bad : {std::string("\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                                 std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    PlayerJoined invalid{"g", 1, "ok " + bad, 0};
    const SerializationError error = capture([&] { (void)registry.encode(invalid, Codec::json); });
    CHECK(error.kind() == SerializationErrorKind::unrepresentable);
    CHECK(error.json_path() == "$.value0.display_name");
    CHECK_THAT(error.what(), Catch::Contains("invalid UTF-8"));
  }
  // Both round-trip in binary.
  CHECK(registry.decode<PlayerJoined>(registry.encode(nul, Codec::binary)) == nul);
}

TEST_CASE("JSON decode accepts reordered keys, extra members and whitespace (as jsonb returns)",
          "[serializers][codec][json]") {
  const TypeRegistry registry = make_game_registry();
  const std::string reordered =
      R"({"value0": {"joined_at_ms": 5, "display_name": "ana", "extra": [1, {"x": null}],)"
      R"( "player_id": 7, "game_id": "g1"}})";
  const PlayerJoined decoded =
      registry.decode<PlayerJoined>("player_joined", 1, Codec::json, reordered);
  CHECK(decoded == PlayerJoined{"g1", 7, "ana", 5});
}

TEST_CASE("malformed JSON gives a byte offset and rapidjson's reason",
          "[serializers][codec][json][errors]") {
  const TypeRegistry registry = make_game_registry();
  const std::string json = registry.encode(player_joined_samples()[0], Codec::json).bytes;
  const SerializationError truncated =
      capture([&] { (void)registry.decode("player_joined", 1, Codec::json, json.substr(0, 30)); });
  CHECK(truncated.kind() == SerializationErrorKind::malformed_input);
  CHECK(truncated.codec() == Codec::json);
  CHECK(truncated.version() == 1u);
  REQUIRE(truncated.byte_offset().has_value());
  CHECK(*truncated.byte_offset() <= 30u);
  CHECK_THAT(truncated.what(), Catch::Contains("invalid JSON") && Catch::Contains("player_joined"));

  const SerializationError not_object =
      capture([&] { (void)registry.decode("player_joined", 1, Codec::json, "42"); });
  CHECK_THAT(not_object.what(), Catch::Contains("a number, expected an object"));

  const SerializationError trailing =
      capture([&] { (void)registry.decode("player_joined", 1, Codec::json, json + " {}"); });
  CHECK(trailing.kind() == SerializationErrorKind::malformed_input);
  CHECK(trailing.byte_offset() == json.size() + 1);
}

TEST_CASE("a JSON value of the wrong shape reports the JSON path where cereal stopped",
          "[serializers][codec][json][errors]") {
  const TypeRegistry registry = make_game_registry();
  auto decode = [&](const std::string& json) {
    return capture([&] { (void)registry.decode("guess_processed", 2, Codec::json, json); });
  };
  const SerializationError missing =
      decode(R"({"value0": {"game_id": "g", "player": "p", "guess": "x", "score": 1,)"
             R"( "accuracy": 0.5, "hints": []}})");
  CHECK(missing.kind() == SerializationErrorKind::malformed_input);
  CHECK(missing.json_path() == "$.value0.round");
  CHECK_THAT(missing.detail(), Catch::Contains("(round) not found"));

  const SerializationError wrong_kind = decode(
      R"({"value0": {"game_id": "g", "round": "three", "player": "p", "guess": "x", "score": 1,)"
      R"( "accuracy": 0.5, "hints": []}})");
  CHECK(wrong_kind.json_path() == "$.value0.round");
  CHECK_THAT(wrong_kind.detail(), Catch::Contains("expected a non-negative integer"));

  const SerializationError in_array =
      decode(R"({"value0": {"game_id": "g", "round": 3, "player": "p", "guess": "x", "score": 1,)"
             R"( "accuracy": 0.5, "hints": ["a", 7]}})");
  CHECK(in_array.json_path() == "$.value0.hints[1]");
  CHECK_THAT(in_array.detail(), Catch::Contains("expected a JSON string"));

  const SerializationError too_big =
      decode(R"({"value0": {"game_id": "g", "round": 3, "player": "p", "guess": "x",)"
             R"( "score": 3000000000, "accuracy": 0.5, "hints": []}})");
  CHECK(too_big.json_path() == "$.value0.score");
  CHECK_THAT(too_big.what(),
             Catch::Contains("$.value0.score") && Catch::Contains("integer that fits in 32 bits"));
}

TEST_CASE("deeply nested JSON is rejected without exhausting the stack",
          "[serializers][codec][json][errors]") {
  const TypeRegistry registry = make_game_registry();
  const std::string deep = R"({"value0": )" + std::string(200000, '[');
  const SerializationError error =
      capture([&] { (void)registry.decode("player_joined", 1, Codec::json, deep); });
  CHECK(error.kind() == SerializationErrorKind::malformed_input);
  CHECK_THAT(error.what(), Catch::Contains("nests deeper than"));

  // Brackets inside strings do not count.
  PlayerJoined brackets{std::string(5000, '['), 1, std::string(5000, '{'), 2};
  CHECK(registry.decode<PlayerJoined>(registry.encode(brackets, Codec::json)) == brackets);
}

TEST_CASE("binary bytes are exactly cereal's portable binary format",
          "[serializers][codec][binary]") {
  const TypeRegistry registry = make_game_registry();
  for (const GameCreated& sample : game_created_samples()) {
    const Encoded encoded = registry.encode(sample, Codec::binary);
    CHECK(encoded.bytes == cereal_binary(sample));
    // cereal's own archive reads ours...
    std::istringstream in(encoded.bytes);
    cereal::PortableBinaryInputArchive archive(in);
    GameCreated read;
    archive(read);
    CHECK(read == sample);
    // ...and ours reads cereal's, in either byte order.
    CHECK(registry.decode<GameCreated>("game_created", 1, Codec::binary, cereal_binary(sample)) ==
          sample);
    const std::string big_endian =
        cereal_binary(sample, cereal::PortableBinaryOutputArchive::Options::BigEndian());
    CHECK(big_endian != encoded.bytes);
    CHECK(registry.decode<GameCreated>("game_created", 1, Codec::binary, big_endian) == sample);
  }
}

TEST_CASE("a corrupted length prefix is rejected before anything is allocated",
          "[serializers][codec][binary][errors]") {
  const TypeRegistry registry = make_game_registry();
  std::string bytes = registry.encode(player_joined_samples()[0], Codec::binary).bytes;
  // Byte 0 is the endianness marker, bytes 1..8 the length of game_id: claim 2^62 bytes.
  bytes[8] = static_cast<char>(0x40);
  const SerializationError error =
      capture([&] { (void)registry.decode("player_joined", 1, Codec::binary, bytes); });
  CHECK(error.kind() == SerializationErrorKind::malformed_input);
  CHECK(error.codec() == Codec::binary);
  CHECK(error.byte_offset() == 9u);
  CHECK_THAT(error.detail(), Catch::Contains("length prefix 4611686018427387910 exceeds"));
  CHECK_THAT(error.what(), Catch::Contains("at byte 9"));
}

TEST_CASE("binary decoding rejects short input, bad bools, bad markers and trailing bytes",
          "[serializers][codec][binary][errors]") {
  TypeRegistry registry;
  registry.register_type<Flag>("flag", 1, {Flag{true}});
  const std::string good = registry.encode(Flag{true}, Codec::binary).bytes;
  REQUIRE(good == std::string("\x01\x01", 2));

  const SerializationError bad_bool =
      capture([&] { (void)registry.decode("flag", 1, Codec::binary, std::string("\x01\x02", 2)); });
  CHECK_THAT(bad_bool.detail(), Catch::Contains("bool byte is 2"));
  CHECK(bad_bool.byte_offset() == 2u);

  const SerializationError marker =
      capture([&] { (void)registry.decode("flag", 1, Codec::binary, std::string("\x07\x01", 2)); });
  CHECK_THAT(marker.detail(), Catch::Contains("endianness marker"));

  const SerializationError empty =
      capture([&] { (void)registry.decode("flag", 1, Codec::binary, ""); });
  CHECK(empty.byte_offset() == 0u);
  CHECK_THAT(empty.detail(), Catch::Contains("needs 1 bytes, only 0 left"));

  const SerializationError trailing = capture(
      [&] { (void)registry.decode("flag", 1, Codec::binary, std::string("\x01\x01\x00", 3)); });
  CHECK(trailing.byte_offset() == 2u);
  CHECK_THAT(trailing.detail(), Catch::Contains("1 trailing bytes"));
}

TEST_CASE("a type's own save or load throwing becomes a typed error",
          "[serializers][codec][errors]") {
  TypeRegistry registry;
  registry.register_type<Picky>("picky", 3, {Picky{1}});
  for (Codec codec : all_codecs) {
    const SerializationError save = capture([&] { (void)registry.encode(Picky{-1}, codec); });
    CHECK(save.kind() == SerializationErrorKind::encode_failed);
    CHECK(save.version() == 3u);
    CHECK_THAT(save.what(), Catch::Contains("negative values are not allowed"));
    const Encoded big = registry.encode(Picky{101}, codec);
    const SerializationError load = capture([&] { (void)registry.decode<Picky>(big); });
    CHECK(load.kind() == SerializationErrorKind::malformed_input);
    CHECK_THAT(load.what(), Catch::Contains("value above 100"));
  }
}

TEST_CASE("a save function throwing deep inside a value leaves the codec usable",
          "[serializers][codec][errors]") {
  TypeRegistry registry;
  registry.register_type<Outer>("outer", 1, {Outer{{Inner{1, 2}}}});
  const Outer bad{{Inner{1, 2}, Inner{3, -1}}};
  const Outer good{{Inner{5, 6}}};
  for (Codec codec : all_codecs) {
    std::string buffer;
    const SerializationError error = capture([&] { registry.encode_to(bad, codec, buffer); });
    CHECK(error.kind() == SerializationErrorKind::encode_failed);
    CHECK_THAT(error.detail(), Catch::Contains("b must not be negative"));
    // The per-thread streams are fine afterwards.
    CHECK(registry.decode<Outer>(registry.encode(good, codec)) == good);
  }
}

TEST_CASE("type-erased decoding returns the registered type in a DecodedValue",
          "[serializers][codec]") {
  const TypeRegistry registry = make_game_registry();
  const PlayerJoined sample = player_joined_samples()[0];
  for (Codec codec : all_codecs) {
    const Encoded encoded = registry.encode(sample, codec);
    DecodedValue decoded = registry.decode(encoded);
    CHECK(decoded.type_name() == "player_joined");
    CHECK(decoded.version() == 1);
    CHECK_FALSE(decoded.was_upcast());
    CHECK(decoded.holds<PlayerJoined>());
    CHECK_FALSE(decoded.holds<GameCreated>());
    CHECK(decoded.get<PlayerJoined>() == sample);
    CHECK(decoded.get_if<GameCreated>() == nullptr);
    const SerializationError wrong = capture([&] { (void)decoded.get<GameCreated>(); });
    CHECK(wrong.kind() == SerializationErrorKind::type_mismatch);
    CHECK_THAT(wrong.what(), Catch::Contains("PlayerJoined") && Catch::Contains("GameCreated"));
    // Re-encoding the erased value gives the same bytes.
    CHECK(registry.encode(decoded, codec).bytes == encoded.bytes);
    CHECK(registry.encode_any(decoded.value(), codec).bytes == encoded.bytes);
    // The one use after the move; CHECK's do-while(false) looks like a loop to clang-tidy.
    // NOLINTNEXTLINE(bugprone-use-after-move)
    CHECK(std::move(decoded).take<PlayerJoined>() == sample);
  }
}

TEST_CASE("decoding as the wrong C++ type names both types", "[serializers][codec][errors]") {
  const TypeRegistry registry = make_game_registry();
  const Encoded encoded = registry.encode(player_joined_samples()[0], Codec::json);
  const SerializationError error = capture([&] { (void)registry.decode<GameCreated>(encoded); });
  CHECK(error.kind() == SerializationErrorKind::type_mismatch);
  CHECK_THAT(error.what(), Catch::Contains("'player_joined' is registered for C++ type "
                                           "gamebot::test_events::PlayerJoined, not "
                                           "gamebot::test_events::GameCreated"));
}

TEST_CASE("encode_to reuses the caller's buffer and reports the registration",
          "[serializers][codec]") {
  const TypeRegistry registry = make_game_registry();
  std::string buffer;
  buffer.reserve(4096);
  const char* storage = buffer.data();
  for (const GuessProcessed& sample : guess_processed_samples()) {
    for (Codec codec : all_codecs) {
      const TypeInfo& info = registry.encode_to(sample, codec, buffer);
      CHECK(info.name() == "guess_processed");
      CHECK(buffer.data() == storage);
      CHECK(buffer == registry.encode(sample, codec).bytes);
      CHECK(registry.decode<GuessProcessed>(info.name(), info.version(), codec, buffer) == sample);
    }
  }
}

namespace {

// A value whose serialize encodes another registered value through the registry,
// so the per-thread streams are used re-entrantly.
const TypeRegistry* nested_registry = nullptr;

struct Envelope {
  std::string inner_json;
  std::string label;
  bool operator==(const Envelope&) const = default;
  template <class Archive>
  void save(Archive& ar) const {
    const std::string fresh =
        nested_registry->encode(PlayerJoined{"nested", 1, label, 2}, Codec::json).bytes;
    ar(CEREAL_NVP(label), cereal::make_nvp("inner_json", fresh));
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(CEREAL_NVP(label), CEREAL_NVP(inner_json));
    (void)nested_registry->decode<PlayerJoined>("player_joined", 1, Codec::json, inner_json);
  }
};

}  // namespace

TEST_CASE("encoding and decoding may nest inside a serialize function", "[serializers][codec]") {
  TypeRegistry registry = make_game_registry();
  registry.register_type<Envelope>("envelope", 1, {Envelope{}});
  nested_registry = &registry;
  for (Codec codec : all_codecs) {
    const Encoded outer = registry.encode(Envelope{"", "outer"}, codec);
    const Envelope back = registry.decode<Envelope>(outer);
    CHECK(back.label == "outer");
    CHECK(registry.decode<PlayerJoined>("player_joined", 1, Codec::json, back.inner_json) ==
          PlayerJoined{"nested", 1, "outer", 2});
  }
  nested_registry = nullptr;
}

TEST_CASE("numbers rapidjson 1.1.0 mis-parses are read exactly and safely",
          "[serializers][codec][json][errors]") {
  const TypeRegistry registry = measurement_registry();
  const std::vector<std::string> numbers = {"0e300",
                                            "-0e-300",
                                            "0.000000000000000000000000000",
                                            "0e38",
                                            "0.0e-22",
                                            "0.00",
                                            "0." + std::string(30, '0') + "1",
                                            "0." + std::string(400, '0') + "1",
                                            "4.951627384951627384e-343",
                                            "1" + std::string(800, '7') + "e-1100",
                                            "1e-400",
                                            "123456789012345678901234567890e-350",
                                            "1" + std::string(300, '0'),
                                            "0." + std::string(1000, '0') + "1e1000",
                                            "1" + std::string(30, '0') + "e-330",
                                            "2.4703282292062328e-324",
                                            "18446744073709551616",
                                            "-9223372036854775809",
                                            "1.5E+10",
                                            "12.5e3",
                                            "0.30000000000000004",
                                            "1e-2147483648",
                                            "-0.0",
                                            "5e-324"};
  for (const std::string& number : numbers) {
    INFO(number.substr(0, 60));
    const std::string json =
        R"({"value0": {"label": ")" + number.substr(0, 20) + R"(", "value": )" + number + "}}";
    double expected = 0;
    std::from_chars(number.data(), number.data() + number.size(), expected);
    const Measurement decoded = registry.decode<Measurement>("measurement", 1, Codec::json, json);
    CHECK(decoded.value == expected);
    CHECK(std::signbit(decoded.value) == (number[0] == '-'));
    CHECK(decoded.label == number.substr(0, 20));
  }
  for (const std::string& number :
       std::vector<std::string>{"1e400", "-1e309", "1" + std::string(400, '0') + ".5"}) {
    const std::string json = R"({"value0": {"label": "x", "value": )" + number + "}}";
    const SerializationError error =
        capture([&] { (void)registry.decode("measurement", 1, Codec::json, json); });
    CHECK(error.kind() == SerializationErrorKind::malformed_input);
    CHECK(error.byte_offset() == 35u);
    CHECK_THAT(error.detail(), Catch::Contains("out of the range of a double"));
  }
}

TEST_CASE("an unsafe number that runs on after its exponent is malformed, never rewritten",
          "[serializers][codec][json][errors]") {
  // Found by fuzz/fuzz_codec_decode: rewriting "668e-96669998" to "0.0" left
  // "0.0e-99" for rapidjson 1.1.0, whose conversion then calls clz(0).
  const TypeRegistry registry = measurement_registry();
  for (const std::string& number :
       std::vector<std::string>{"668e-96669998e-99", "1e400.5", "12.5e999-1", "1e-400e1"}) {
    INFO(number);
    const std::string json = R"({"value0": {"label": "x", "value": )" + number + "}}";
    const SerializationError error =
        capture([&] { (void)registry.decode("measurement", 1, Codec::json, json); });
    CHECK(error.kind() == SerializationErrorKind::malformed_input);
    CHECK(error.byte_offset() == 35u);
    CHECK_THAT(error.detail(), Catch::Contains("malformed number"));
  }
}

TEST_CASE("unsafe numbers are found at any position after escapes and across blocks",
          "[serializers][codec][json][errors]") {
  const TypeRegistry registry = measurement_registry();
  const std::vector<std::string> numbers = {"0e300", "0." + std::string(23, '0'),
                                            "0." + std::string(40, '0') + "1",
                                            "4.951627384951627384e-343", "-0.0e-23"};
  const std::vector<std::string> labels = {"", "a\\\"b", "\\\\", "[{\\\"x\\\": 1e400}]",
                                           std::string(61, 'x') + "\\\""};
  int checked = 0;
  for (const std::string& number : numbers) {
    double expected = 0;
    std::from_chars(number.data(), number.data() + number.size(), expected);
    for (const std::string& label : labels) {
      for (std::size_t pad = 0; pad < 70; ++pad) {
        const std::string json = R"({"value0": {"label": ")" + label + R"(", "value":)" +
                                 std::string(pad, ' ') + number + "}}";
        INFO(json);
        const Measurement decoded =
            registry.decode<Measurement>("measurement", 1, Codec::json, json);
        REQUIRE(decoded.value == expected);
        REQUIRE(std::signbit(decoded.value) == std::signbit(expected));
        ++checked;
      }
    }
  }
  CHECK(checked == 5 * 5 * 70);
}

TEST_CASE("random doubles round-trip bit for bit through JSON", "[serializers][codec][json]") {
  const TypeRegistry registry = measurement_registry();
  std::mt19937_64 random(20240501);
  int checked = 0;
  while (checked < 2000) {
    const std::uint64_t bits = random();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    if (!std::isfinite(value)) continue;
    ++checked;
    const Encoded encoded = registry.encode(Measurement{"r", value}, Codec::json);
    const double back = registry.decode<Measurement>(encoded).value;
    // Bit for bit on purpose (a round trip must keep every finite double exactly).
    // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison)
    REQUIRE(std::memcmp(&back, &value, sizeof value) == 0);
  }
}
