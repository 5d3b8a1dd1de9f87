// Decoding untrusted bytes through the TypeRegistry, both codecs, several
// registered shapes (nested structs, strings, vectors, maps, optionals, an
// upcaster chain). The contract: decoding either succeeds or throws the typed
// SerializationError; anything else (another exception, a sanitizer report, a
// hang) is a crash. A successful decode must also survive a round trip:
// re-encoding the value with the same codec and decoding it again gives an
// equal value (the JSON writer may refuse what a decoder let through, e.g.
// invalid UTF-8 in a string: that is the typed error `unrepresentable`).
//
// Input layout: byte 0 picks the type and codec, byte 1 the schema version
// (so old versions run the upcasters), the rest are the encoded bytes.
//
// GAMEBOT_FUZZ_WRITE_SEEDS=<dir> makes the target write one seed per sample
// and codec into <dir> at start-up (how corpus/codec_decode was made).

#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/serializers/serializers.hpp"

namespace {

using gamebot::serializers::Codec;
using gamebot::serializers::SerializationError;
using gamebot::serializers::TypeRegistry;

struct Position {
  std::int32_t x = 0;
  std::int32_t y = 0;
  bool operator==(const Position&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(x), CEREAL_NVP(y));
  }
};

struct PlayerMoved {
  std::string game_id;
  std::uint64_t player_id = 0;
  Position from;
  Position to;
  std::vector<Position> path;
  bool operator==(const PlayerMoved&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player_id), CEREAL_NVP(from), CEREAL_NVP(to),
       CEREAL_NVP(path));
  }
};

struct GameCreated {
  std::string game_id;
  std::string title;
  std::uint8_t mode = 0;
  std::int64_t created_at_ms = 0;
  std::vector<std::string> teams;
  std::map<std::string, std::string> settings;
  std::optional<std::string> description;
  bool operator==(const GameCreated&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(title), CEREAL_NVP(mode), CEREAL_NVP(created_at_ms),
       CEREAL_NVP(teams), CEREAL_NVP(settings), CEREAL_NVP(description));
  }
};

struct Round {
  std::uint32_t number = 0;
  std::vector<std::string> guesses;
  std::optional<std::string> winner;
  bool operator==(const Round&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(number), CEREAL_NVP(guesses), CEREAL_NVP(winner));
  }
};

struct GameFinished {
  std::string game_id;
  std::vector<Round> rounds;
  std::map<std::string, std::int32_t> scores;
  bool operator==(const GameFinished&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(rounds), CEREAL_NVP(scores));
  }
};

// guess_processed v1 and v2, joined by an upcaster.
struct GuessProcessedV1 {
  std::string player;
  std::string guess;
  bool correct = false;
  bool operator==(const GuessProcessedV1&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(player), CEREAL_NVP(guess), CEREAL_NVP(correct));
  }
};

struct GuessProcessed {
  std::string player;
  std::string guess;
  std::int32_t score = 0;
  std::vector<std::string> hints;
  bool operator==(const GuessProcessed&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(player), CEREAL_NVP(guess), CEREAL_NVP(score), CEREAL_NVP(hints));
  }
};

const TypeRegistry& registry() {
  static const TypeRegistry instance = [] {
    TypeRegistry r;
    r.register_type<PlayerMoved>("player_moved", 1,
                                 {{"g1", 7, {1, 2}, {3, -4}, {{1, 2}, {2, 3}, {3, -4}}}, {}});
    r.register_type<GameCreated>(
        "game_created", 1,
        {{"g1", "Zoë's game", 2, 1700000000000, {"red", "blue"}, {{"rounds", "3"}}, "fun"}, {}});
    r.register_type<GameFinished>(
        "game_finished", 1,
        {{"g1", {{1, {"cat", "dog"}, "ana"}, {2, {}, std::nullopt}}, {{"ana", 3}, {"bo", -1}}},
         {}});
    r.register_type<GuessProcessed>("guess_processed", 2, {{"ana", "cat", 10, {"animal"}}, {}});
    r.add_upcaster<GuessProcessedV1>(
        "guess_processed", 1,
        [](GuessProcessedV1 old) {
          return GuessProcessed{old.player, old.guess, old.correct ? 1 : 0, {}};
        },
        {{"ana", "cat", true}});
    return r;
  }();
  return instance;
}

void write_seeds(const std::string& dir) {
  const TypeRegistry& r = registry();
  int written = 0;
  for (std::size_t t = 0; t < r.types().size(); ++t) {
    const auto* info = r.types()[t];
    for (Codec codec : gamebot::serializers::all_codecs) {
      for (std::size_t s = 0; s < info->samples().size(); ++s) {
        auto encoded = r.encode_any(info->samples()[s], codec);
        std::string input;
        input += static_cast<char>(t * 2 + static_cast<std::size_t>(codec));
        input += static_cast<char>(info->version());
        input += encoded.bytes;
        std::ofstream(dir + "/" + info->name() + "-" + std::string(to_string(codec)) + "-" +
                          std::to_string(s),
                      std::ios::binary)
            << input;
        ++written;
      }
    }
  }
  std::fprintf(stderr, "wrote %d seeds to %s\n", written, dir.c_str());
}

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "codec_decode: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("GAMEBOT_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const TypeRegistry& r = registry();
  const auto& types = r.types();
  const auto* info = types[(data[0] / 2) % types.size()];
  const Codec codec = (data[0] & 1) ? Codec::binary : Codec::json;
  const std::uint32_t version = data[1];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  std::optional<gamebot::serializers::DecodedValue> decoded;
  try {
    decoded.emplace(r.decode(info->name(), version, codec, bytes));
  } catch (const SerializationError&) {
    return 0;  // the typed error: the contract holds
  }

  // A decoded value must round-trip through the same codec.
  gamebot::serializers::Encoded again;
  try {
    again = r.encode(*decoded, codec);
  } catch (const SerializationError& error) {
    // Decoding is more lenient than encoding in both codecs: binary carries any
    // bytes in a string, and the JSON reader (rapidjson without encoding
    // validation) accepts invalid UTF-8 and "\u0000", all of which the JSON
    // writer refuses. That refusal is the typed error; anything else is a bug.
    if (error.kind() != gamebot::serializers::SerializationErrorKind::unrepresentable) {
      fail("re-encoding a decoded value failed", error.what());
    }
    return 0;
  }
  try {
    auto round_trip = r.decode(again);
    if (!info->equal(decoded->value(), round_trip.value())) {
      fail("round trip changed the value", again.bytes);
    }
  } catch (const SerializationError& error) {
    fail("decoding our own encoding failed", error.what());
  }
  return 0;
}
