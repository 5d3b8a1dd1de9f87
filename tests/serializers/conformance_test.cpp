#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gamebot/serializers/internal/golden.hpp"
#include "gamebot/serializers/serializers.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_events.hpp"

using namespace gamebot;
using namespace gamebot::serializers;
using namespace gamebot::test_events;
namespace fs = std::filesystem;

namespace {

// Pins GAMEBOT_UPDATE_GOLDEN for one test, whatever the caller's environment says.
class UpdateGoldenEnv {
 public:
  explicit UpdateGoldenEnv(bool update) {
    if (const char* value = std::getenv("GAMEBOT_UPDATE_GOLDEN")) saved_ = value;
    if (update) {
      ::setenv("GAMEBOT_UPDATE_GOLDEN", "1", 1);
    } else {
      ::unsetenv("GAMEBOT_UPDATE_GOLDEN");
    }
  }
  ~UpdateGoldenEnv() {
    if (saved_) {
      ::setenv("GAMEBOT_UPDATE_GOLDEN", saved_->c_str(), 1);
    } else {
      ::unsetenv("GAMEBOT_UPDATE_GOLDEN");
    }
  }
  UpdateGoldenEnv(const UpdateGoldenEnv&) = delete;
  UpdateGoldenEnv& operator=(const UpdateGoldenEnv&) = delete;

 private:
  std::optional<std::string> saved_;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

ConformanceOptions options_in(const fs::path& dir) {
  ConformanceOptions options;
  options.golden_dir = dir;
  return options;
}

const CheckResult& check_of(const ConformanceReport& report, std::string_view type, Codec codec,
                            CheckKind kind) {
  const TypeCodecReport* entry = report.find(type, codec);
  REQUIRE(entry != nullptr);
  const CheckResult* check = entry->check(kind);
  REQUIRE(check != nullptr);
  return *check;
}

std::string details_of(const CheckResult& check) {
  std::string text;
  for (const std::string& line : check.details) text += line + "\n";
  return text;
}

// operator== looks at a member serialize does not write.
struct ForgetfulCounter {
  int value = 0;
  int cached_total = 0;
  bool operator==(const ForgetfulCounter&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(value));
  }
};

// load drops data that save wrote.
struct LossyNote {
  std::string text;
  bool operator==(const LossyNote&) const = default;
  template <class Archive>
  void save(Archive& ar) const {
    ar(CEREAL_NVP(text));
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(CEREAL_NVP(text));
    text = text.substr(0, 3);
  }
};

// player_joined as a later commit wrote it: a renamed member, same name and version.
struct PlayerJoinedRenamed {
  std::string game_id;
  std::uint64_t player_id = 0;
  std::string display_name;
  std::int64_t joined_at_ms = 0;
  bool operator==(const PlayerJoinedRenamed&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player_id), cereal::make_nvp("name", display_name),
       CEREAL_NVP(joined_at_ms));
  }
};

// Trusts a number it read: sleeps that many milliseconds while decoding.
struct TrustingDelay {
  std::uint8_t delay_ms = 0;
  bool operator==(const TrustingDelay&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(delay_ms));
    if constexpr (Archive::is_loading::value) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    }
  }
};

struct Tally {
  std::uint64_t count = 0;
  bool operator==(const Tally&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(count));
  }
};

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

}  // namespace

TEST_CASE("the game registry passes every check against its committed golden files",
          "[serializers][conformance]") {
  UpdateGoldenEnv no_update(false);
  const TypeRegistry registry = make_game_registry();
  const ConformanceReport report =
      run_conformance(registry, options_in(GAMEBOT_SERIALIZERS_GOLDEN_DIR));
  INFO(report.to_string());
  CHECK(report.passed());
  REQUIRE(report.entries.size() == 6);
  for (const TypeCodecReport& entry : report.entries) {
    CHECK(entry.checks.size() == 5);
    CHECK(entry.check(CheckKind::round_trip)->status == CheckStatus::passed);
    CHECK(entry.check(CheckKind::golden)->status == CheckStatus::passed);
    CHECK(entry.check(CheckKind::robustness)->status == CheckStatus::passed);
    CHECK(entry.check(CheckKind::wrong_name)->status == CheckStatus::passed);
  }
  CHECK(check_of(report, "guess_processed", Codec::json, CheckKind::upcast).status ==
        CheckStatus::passed);
  CHECK(check_of(report, "player_joined", Codec::binary, CheckKind::upcast).status ==
        CheckStatus::not_applicable);
  CHECK_THAT(check_of(report, "guess_processed", Codec::binary, CheckKind::golden).summary,
             Catch::Contains("guess_processed@v2.binary matches") &&
                 Catch::Contains("guess_processed@v1.binary matches"));
  CHECK_THAT(check_of(report, "guess_processed", Codec::json, CheckKind::wrong_name).summary,
             Catch::Contains("'guess_processe' -> unknown_type suggesting 'guess_processed'"));
  const std::string text = report.to_string();
  CHECK_THAT(text, Catch::StartsWith("serializer conformance: 6 of 6 type/codec pairs pass"));
  CHECK_THAT(text, Catch::Contains("PASS  guess_processed@v2  binary  round_trip golden robustness "
                                   "wrong_name upcast"));
  CHECK_THAT(text, Catch::Contains("PASS  player_joined@v1    json    round_trip golden robustness "
                                   "wrong_name (n/a: upcast)"));
}

TEST_CASE("round_trip fails for a type whose == compares what is not serialized",
          "[serializers][conformance]") {
  TypeRegistry registry;
  registry.register_type<ForgetfulCounter>("counter_changed", 1,
                                           {ForgetfulCounter{3, 0}, ForgetfulCounter{4, 9}});
  const ConformanceReport report = run_conformance(registry, {});
  CHECK_FALSE(report.passed());
  for (Codec codec : all_codecs) {
    const CheckResult& check = check_of(report, "counter_changed", codec, CheckKind::round_trip);
    CHECK(check.status == CheckStatus::failed);
    CHECK_THAT(check.summary, Catch::Contains("sample 2 of 2") &&
                                  Catch::Contains("operator== compares something serialize does "
                                                  "not write"));
    CHECK(check_of(report, "counter_changed", codec, CheckKind::robustness).status ==
          CheckStatus::passed);
  }
  CHECK_THAT(report.to_string(),
             Catch::Contains("FAIL  counter_changed@v1  json    round_trip: sample 2 of 2"));
}

TEST_CASE("round_trip fails with a diff when decoding loses data", "[serializers][conformance]") {
  TypeRegistry registry;
  registry.register_type<LossyNote>("note_added", 1, {LossyNote{"abc"}, LossyNote{"abcdef"}});
  const ConformanceReport report = run_conformance(registry, {});
  const CheckResult& check = check_of(report, "note_added", Codec::json, CheckKind::round_trip);
  CHECK(check.status == CheckStatus::failed);
  CHECK_THAT(check.summary, Catch::Contains("sample 2 of 2: the decoded value is not == the "
                                            "original; its encoding differs"));
  CHECK_THAT(details_of(check),
             Catch::Contains("- \"text\": \"abcdef\"") && Catch::Contains("+ \"text\": \"abc\""));
}

TEST_CASE("golden files are written on request, then a drifted encoding fails with a diff",
          "[serializers][conformance][golden]") {
  const testing::TempDir dir;
  {
    UpdateGoldenEnv no_update(false);
    const ConformanceReport missing = run_conformance(make_game_registry(), options_in(dir.path()));
    CHECK_FALSE(missing.passed());
    CHECK_THAT(
        check_of(missing, "player_joined", Codec::json, CheckKind::golden).summary,
        Catch::Contains("golden file " + (fs::path(dir.path()) / "player_joined@v1.json").string() +
                        " is missing; create it with GAMEBOT_UPDATE_GOLDEN=1"));

    ConformanceOptions update = options_in(dir.path());
    update.update_golden = true;
    const ConformanceReport written = run_conformance(make_game_registry(), update);
    CHECK(written.passed());
    CHECK(check_of(written, "player_joined", Codec::json, CheckKind::golden).summary ==
          "wrote player_joined@v1.json");
    CHECK(fs::exists(fs::path(dir.path()) / "guess_processed@v1.binary"));
    CHECK(run_conformance(make_game_registry(), options_in(dir.path())).passed());
  }

  TypeRegistry drifted;
  drifted.register_type<PlayerJoinedRenamed>(
      "player_joined", 1, {PlayerJoinedRenamed{"g-7f3a", 1001, "ana", 1'700'000'000'123}});
  ConformanceOptions options = options_in(dir.path());
  options.check_stale_golden_files = false;
  {
    UpdateGoldenEnv no_update(false);
    const ConformanceReport report = run_conformance(drifted, options);
    const CheckResult& json = check_of(report, "player_joined", Codec::json, CheckKind::golden);
    CHECK(json.status == CheckStatus::failed);
    CHECK_THAT(json.summary,
               Catch::Contains("sample 1 of 1 differs from player_joined@v1.json: the "
                               "encoding changed without a version bump"));
    CHECK_THAT(details_of(json), Catch::Contains("- \"display_name\": \"ana\",") &&
                                     Catch::Contains("+ \"name\": \"ana\","));
    // The old file had three samples.
    CHECK_THAT(details_of(json), Catch::Contains("holds 3 sample(s), 1 registered"));
    // Binary has no names, but the sample set changed.
    CHECK(check_of(report, "player_joined", Codec::binary, CheckKind::golden).status ==
          CheckStatus::failed);
    CHECK_THAT(report.to_string(),
               Catch::Contains("details:") && Catch::Contains("player_joined@v1 json golden:"));
  }
  {
    UpdateGoldenEnv update(true);
    const ConformanceReport regenerated = run_conformance(drifted, options);
    CHECK(regenerated.passed());
    CHECK(check_of(regenerated, "player_joined", Codec::json, CheckKind::golden).summary ==
          "updated player_joined@v1.json");
  }
  UpdateGoldenEnv no_update(false);
  CHECK(run_conformance(drifted, options).passed());
  CHECK_THAT(read_text(fs::path(dir.path()) / "player_joined@v1.json"),
             Catch::Contains("\"name\": \"ana\"") && Catch::Contains("1 sample\n"));
}

TEST_CASE("golden files of an unregistered name or version are registry problems",
          "[serializers][conformance][golden]") {
  UpdateGoldenEnv no_update(false);
  const testing::TempDir dir;
  ConformanceOptions update = options_in(dir.path());
  update.update_golden = true;
  REQUIRE(run_conformance(make_game_registry(), update).passed());
  // A stray file that is not a golden file is ignored.
  std::ofstream(fs::path(dir.path()) / "README.txt") << "notes";

  // player_joined was renamed; guess_processed lost its upcaster.
  TypeRegistry renamed;
  renamed.register_type<GameCreated>("game_created", 1, game_created_samples());
  renamed.register_type<PlayerJoined>("player_joins", 1, player_joined_samples());
  renamed.register_type<GuessProcessed>("guess_processed", 2, guess_processed_samples());
  const ConformanceReport report = run_conformance(renamed, update);
  CHECK_FALSE(report.passed());
  CHECK(report.failed_count() == 0);
  REQUIRE(report.registry_problems.size() == 4);
  CHECK_THAT(report.registry_problems[0],
             Catch::Contains("guess_processed@v1.binary is for v1 but no upcaster from v1"));
  CHECK_THAT(report.registry_problems[2],
             Catch::Contains("golden file player_joined@v1.binary belongs to no registered type "
                             "'player_joined' (renamed? closest: player_joins)"));
  CHECK_THAT(report.to_string(),
             Catch::Contains("FAIL  registry: golden file player_joined@v1.json"));
  CHECK(find_stale_golden_files(renamed, dir.path()) == report.registry_problems);

  TypeRegistry rolled_back;
  rolled_back.register_type<GuessProcessedV1>("guess_processed", 1, guess_processed_v1_samples());
  const auto problems = find_stale_golden_files(rolled_back, dir.path());
  CHECK_THAT(problems.front(),
             Catch::Contains("game_created@v1.binary belongs to no registered type"));
  CHECK(std::count_if(problems.begin(), problems.end(), [](const std::string& p) {
          return p.find("guess_processed@v2.json is for v2, newer than the registered v1") !=
                 std::string::npos;
        }) == 1);
}

TEST_CASE("robustness fails for a decoder that trusts a number it read",
          "[serializers][conformance]") {
  TypeRegistry registry;
  registry.register_type<TrustingDelay>("delay_set", 1, {TrustingDelay{0}});
  ConformanceOptions options;
  options.codecs = {Codec::binary};
  options.decode_time_limit = std::chrono::milliseconds(60);
  const ConformanceReport report = run_conformance(registry, options);
  const CheckResult& check = check_of(report, "delay_set", Codec::binary, CheckKind::robustness);
  CHECK(check.status == CheckStatus::failed);
  CHECK_THAT(check.summary, Catch::Contains("sample 1 of 1 with byte 1 xor 0xff took") &&
                                Catch::Contains("limit 60 ms"));
  CHECK(check_of(report, "delay_set", Codec::binary, CheckKind::round_trip).status ==
        CheckStatus::passed);
}

TEST_CASE("robustness covers every truncation and corruption of the samples",
          "[serializers][conformance]") {
  const TypeRegistry registry = make_game_registry();
  ConformanceOptions options;
  options.only_type = "player_joined";
  options.codecs = {Codec::binary};
  const ConformanceReport report = run_conformance(registry, options);
  REQUIRE(report.entries.size() == 1);
  std::size_t bytes = 0;
  for (const auto& sample : player_joined_samples()) {
    bytes += registry.encode(sample, Codec::binary).bytes.size();
  }
  const CheckResult& check =
      check_of(report, "player_joined", Codec::binary, CheckKind::robustness);
  CHECK(check.status == CheckStatus::passed);
  CHECK_THAT(check.summary, Catch::StartsWith(std::to_string(bytes) + " truncations, "));

  // Long encodings are sampled, and the report says so.
  options.max_truncations = 10;
  options.max_corruption_positions = 5;
  const ConformanceReport spread_report = run_conformance(registry, options);
  const CheckResult spread = *spread_report.entries[0].check(CheckKind::robustness);
  CHECK_THAT(spread.summary, Catch::StartsWith("30 truncations, ") && Catch::Contains("(spread)"));

  options.only_type = "player_joind";
  CHECK_THROWS_AS(run_conformance(registry, options), SerializationError);
}

TEST_CASE("wrong_name decodes each sample under an unregistered and every other name",
          "[serializers][conformance]") {
  TypeRegistry registry;
  registry.register_type<TrustingDelay>("delay_set", 1, {TrustingDelay{0}});
  registry.register_type<Tally>("tally_counted", 1, {Tally{250}});
  ConformanceOptions options;
  options.codecs = {Codec::binary};
  options.decode_time_limit = std::chrono::milliseconds(60);
  options.max_truncations = 1;
  options.max_corruption_positions = 1;
  const ConformanceReport report = run_conformance(registry, options);
  // tally_counted's first byte after the marker (250) is what delay_set trusts.
  const CheckResult& check =
      check_of(report, "tally_counted", Codec::binary, CheckKind::wrong_name);
  CHECK(check.status == CheckStatus::failed);
  CHECK_THAT(check.summary, Catch::Contains("sample 1 of 1 decoded as 'delay_set' v1 took") &&
                                Catch::Contains("(limit 60 ms)"));
  const CheckResult& fine = check_of(report, "delay_set", Codec::binary, CheckKind::wrong_name);
  CHECK(fine.status == CheckStatus::passed);
  CHECK(fine.summary ==
        "'delay_se' -> unknown_type suggesting 'delay_set'; under other names: 1 typed errors, 0 "
        "values");
}

TEST_CASE("upcast fails for a broken chain, missing old bytes and a throwing upcaster",
          "[serializers][conformance][upcaster]") {
  TypeRegistry gap;
  gap.register_type<Score>("score_recorded", 3, {Score{1, 0}});
  gap.add_upcaster<ScoreV1>("score_recorded", 1,
                            [](ScoreV1 old) { return ScoreV2{std::stoi(old.points)}; },
                            {ScoreV1{"5"}, ScoreV1{"five"}});
  const ConformanceReport report = run_conformance(gap, {});
  const CheckResult& check = check_of(report, "score_recorded", Codec::json, CheckKind::upcast);
  CHECK(check.status == CheckStatus::failed);
  const std::string details = details_of(check);
  CHECK_THAT(details, Catch::Contains("v1 cannot reach v3: no upcaster from v2 to v3"));
  CHECK_THAT(details, Catch::Contains("v1 sample 1 of 2 does not upcast to v3") &&
                          Catch::Contains("breaks at v2"));
  CHECK_THAT(details, Catch::Contains("v1 sample 2 of 2 does not upcast to v3") &&
                          Catch::Contains("v1 -> v2 threw"));

  TypeRegistry no_bytes;
  no_bytes.register_type<ScoreV2>("score_recorded", 2, {ScoreV2{1}});
  no_bytes.add_upcaster<ScoreV1>("score_recorded", 1,
                                 [](ScoreV1 old) { return ScoreV2{std::stoi(old.points)}; });
  const ConformanceReport no_bytes_report = run_conformance(no_bytes, {});
  const CheckResult& empty =
      check_of(no_bytes_report, "score_recorded", Codec::binary, CheckKind::upcast);
  CHECK(empty.status == CheckStatus::failed);
  CHECK(empty.summary == "no v1 bytes to upcast: register v1 samples with add_upcaster");
}

TEST_CASE("upcast uses an older version's golden files when no old samples are registered",
          "[serializers][conformance][upcaster][golden]") {
  UpdateGoldenEnv no_update(false);
  const testing::TempDir dir;
  TypeRegistry v1;
  v1.register_type<ScoreV1>("score_recorded", 1, {ScoreV1{"5"}, ScoreV1{"12"}});
  ConformanceOptions update = options_in(dir.path());
  update.update_golden = true;
  REQUIRE(run_conformance(v1, update).passed());

  TypeRegistry v2;
  v2.register_type<ScoreV2>("score_recorded", 2, {ScoreV2{1}});
  v2.add_upcaster<ScoreV1>("score_recorded", 1,
                           [](ScoreV1 old) { return ScoreV2{std::stoi(old.points)}; });
  const ConformanceReport report = run_conformance(v2, options_in(dir.path()));
  for (Codec codec : all_codecs) {
    const CheckResult& check = check_of(report, "score_recorded", codec, CheckKind::upcast);
    CHECK(check.status == CheckStatus::passed);
    CHECK(check.summary == "upcast to v2 from v1: 2 inputs");
  }
  // A v1 golden file whose bytes no longer upcast is caught.
  std::ofstream(fs::path(dir.path()) / "score_recorded@v1.json", std::ios::trunc)
      << internal::format_golden("score_recorded@v1", Codec::json,
                                 {R"({"value0": {"points": "lots"}})"});
  const ConformanceReport broken_report = run_conformance(v2, options_in(dir.path()));
  const CheckResult& broken =
      check_of(broken_report, "score_recorded", Codec::json, CheckKind::upcast);
  CHECK(broken.status == CheckStatus::failed);
  CHECK_THAT(broken.summary,
             Catch::Contains("score_recorded@v1.json sample 1 of 1 does not upcast"));
}

TEST_CASE("a failing report fits on one screen", "[serializers][conformance]") {
  TypeRegistry registry = make_game_registry();
  registry.register_type<ForgetfulCounter>(
      "counter_changed", 1,
      {ForgetfulCounter{1, 1}, ForgetfulCounter{2, 2}, ForgetfulCounter{3, 3}});
  registry.register_type<LossyNote>("note_added", 1, {LossyNote{"abcdef"}});
  const ConformanceReport report = run_conformance(registry, {});
  const std::string text = report.to_string(20);
  INFO(text);
  CHECK(report.failed_count() == 4);
  CHECK(std::count(text.begin(), text.end(), '\n') <= 40);
  CHECK_THAT(text, Catch::StartsWith("serializer conformance: 6 of 10 type/codec pairs pass"));
  CHECK_THAT(text, Catch::Contains("FAIL  counter_changed@v1  binary  round_trip: sample 1 of 3") &&
                       Catch::Contains("(and 2 more)"));
}

TEST_CASE("golden files keep every byte of every sample", "[serializers][conformance][golden]") {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::vector<std::string> binary = {all_bytes, "", std::string(17, '\n')};
  const auto parsed_binary =
      internal::parse_golden(internal::format_golden("t@v1", Codec::binary, binary), Codec::binary);
  REQUIRE(parsed_binary.ok);
  CHECK(parsed_binary.encodings == binary);

  const std::vector<std::string> json = {"{\n\"a\": \"--- sample 2 of 9: 3 bytes\"\n}", "{}"};
  const auto parsed_json =
      internal::parse_golden(internal::format_golden("t@v1", Codec::json, json), Codec::json);
  REQUIRE(parsed_json.ok);
  CHECK(parsed_json.encodings == json);

  const auto bad = internal::parse_golden("--- sample 1 of 1: 10 bytes\nabc\n", Codec::json);
  CHECK_FALSE(bad.ok);
  CHECK_THAT(bad.error, Catch::Contains("shorter than its 10 bytes"));
}
