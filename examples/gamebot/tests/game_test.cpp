#include "gamebot_example/game.hpp"

#include <catch2/catch.hpp>
#include <cereal/archives/json.hpp>
#include <sstream>

#include "gamebot/harness/catch2.hpp"
#include "gamebot_example/events.hpp"
#include "gamebot_example/scoreboard.hpp"

namespace es = gamebot::eventstore;
using gamebot::harness::StoreFixture;
using gamebot_example::Games;

namespace {

const gamebot::serializers::TypeRegistry& registry() {
  static const gamebot::serializers::TypeRegistry instance = gamebot_example::make_registry();
  return instance;
}

// A game of `rounds` rounds with players ana and bo, secret word "crane".
void start_game(Games& games, const std::string& id, std::uint32_t rounds) {
  REQUIRE(games.create(id, 5, rounds).ok());
  REQUIRE(games.join(id, "ana").ok());
  REQUIRE(games.join(id, "bo").ok());
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "a game is rebuilt from its stream with scores and rounds",
                 "[examples][game]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  start_game(games, "g1", 3);
  CHECK(games.guess("g1", "ana", "slate", "crane").ok());
  CHECK(games.guess("g1", "ana", "crane", "crane").ok());
  CHECK(games.guess("g1", "bo", "crane", "crane").ok());

  gamebot_example::GameState state = games.load("g1");
  CHECK(state.current_round == 3);
  CHECK(state.scores.at("ana") == 1);
  CHECK(state.scores.at("bo") == 1);
  CHECK_FALSE(state.completed);
  CHECK(state.version == 8);  // created, 2 joins, 3 guesses, 2 round completions
}

TEST_CASE_METHOD(StoreFixture, "the last correct guess completes the game and names the winners",
                 "[examples][game]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  start_game(games, "g2", 1);
  REQUIRE(games.guess("g2", "bo", "crane", "crane").ok());

  auto events = typed.read_stream_forward(Games::stream_of("g2"));
  REQUIRE(events.ok());
  REQUIRE(events.events.size() == 6);
  REQUIRE(events.events.back().is<gamebot_example::GameCompleted>());
  CHECK(events.events.back().get<gamebot_example::GameCompleted>().winners ==
        std::vector<std::string>{"bo"});
  CHECK(games.load("g2").completed);
  CHECK(games.guess("g2", "ana", "crane", "crane").rejected == "the game is over");
}

TEST_CASE_METHOD(StoreFixture, "rules reject bad commands without writing anything",
                 "[examples][game]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  CHECK(games.join("nope", "ana").rejected == "no such game");
  start_game(games, "g3", 2);
  CHECK(games.join("g3", "ana").rejected == "already joined");
  CHECK(games.guess("g3", "cy", "crane", "crane").rejected == "not a player of this game");
  CHECK(games.guess("g3", "ana", "cranes", "crane").rejected == "wrong word length");
  CHECK(store().stream_info(Games::stream_of("g3"))->version == 3);
}

TEST_CASE_METHOD(StoreFixture,
                 "a command decided on a stale version loses with wrong_expected_version",
                 "[examples][game][concurrency]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  start_game(games, "g4", 2);
  gamebot_example::GameState stale = games.load("g4");
  REQUIRE(games.guess("g4", "ana", "crane", "crane").ok());

  // Another player's command decided on the state before ana's win.
  const es::TypedEventData late{
      std::any(gamebot_example::RoundCompleted{"g4", 1, "bo"}), {}, {}, {}, {}, {}};
  auto result = typed.append(Games::stream_of("g4"), es::ExpectedVersion::exact(stale.version),
                             std::span<const es::TypedEventData>(&late, 1));
  CHECK(result.status == es::WriteStatus::wrong_expected_version);
  CHECK(result.version == stale.version + 2);
  CHECK(games.load("g4").scores.at("bo") == 0);
}

TEST_CASE_METHOD(StoreFixture, "snapshots every N events give the same state as a full replay",
                 "[examples][game][snapshots]") {
  es::TypedEventStore typed(store(), registry());
  Games with_snapshots(store(), typed, 4);
  start_game(with_snapshots, "g5", 5);
  for (int round = 0; round < 4; ++round) {
    REQUIRE(with_snapshots.guess("g5", "ana", "slate", "crane").ok());
    REQUIRE(with_snapshots.guess("g5", round % 2 == 0 ? "ana" : "bo", "crane", "crane").ok());
  }
  auto snapshot = store().read_snapshot(Games::stream_of("g5"));
  REQUIRE(snapshot);
  CHECK(snapshot->source_version >= 8);

  Games replay_only(store(), typed, 0);
  REQUIRE(store().delete_snapshot(Games::stream_of("g5")));
  gamebot_example::GameState replayed = replay_only.load("g5");
  REQUIRE(with_snapshots.guess("g5", "bo", "slate", "crane").ok());
  gamebot_example::GameState after = with_snapshots.load("g5");
  CHECK(replayed.scores == std::map<std::string, std::uint32_t>{{"ana", 2}, {"bo", 2}});
  CHECK(after.scores == replayed.scores);
  CHECK(after.version == replayed.version + 1);
}

TEST_CASE_METHOD(StoreFixture, "a version 1 guess is read back upcast to version 2",
                 "[examples][serializers]") {
  es::TypedEventStore typed(store(), registry());
  // Bytes as version 1 of the JSON codec wrote them (cereal's JSON archive).
  std::ostringstream v1;
  {
    cereal::JSONOutputArchive archive(v1);
    archive(gamebot_example::GuessProcessedV1{"g6", "ana", "crane", true});
  }
  es::EventData raw;
  raw.type = "guess_processed@v1";
  raw.data = v1.str();
  REQUIRE(store().append("game-g6", es::ExpectedVersion::no_stream(), raw).ok());

  auto events = typed.read_stream_forward("game-g6");
  REQUIRE(events.events.size() == 1);
  REQUIRE(events.events[0].is<gamebot_example::GuessProcessed>());
  CHECK(events.events[0].get<gamebot_example::GuessProcessed>() ==
        gamebot_example::GuessProcessed{"g6", "ana", "crane", true, 1});
}

TEST_CASE_METHOD(StoreFixture,
                 "the scoreboard projection follows the games through a persistent subscription",
                 "[examples][projection]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  gamebot_example::ScoreboardProjector projector(store(), typed, repo());
  start_game(games, "g7", 3);
  REQUIRE(games.guess("g7", "bo", "crane", "crane").ok());
  REQUIRE(games.guess("g7", "bo", "crane", "crane").ok());
  REQUIRE(games.guess("g7", "ana", "crane", "crane").ok());

  CHECK(projector.drain(std::chrono::milliseconds(100)) == 10);  // 1 + 2 joins + 2 + 2 + 3
  CHECK(gamebot_example::scoreboard_of(repo(), "g7") ==
        std::vector<gamebot_example::PlayerScore>{{"bo", 2}, {"ana", 1}});
  CHECK(gamebot_example::scoreboard_position(repo()) ==
        static_cast<std::int64_t>(store().head_position()));
}

TEST_CASE_METHOD(StoreFixture, "a redelivered event does not change the scoreboard twice",
                 "[examples][projection]") {
  es::TypedEventStore typed(store(), registry());
  Games games(store(), typed, 0);
  start_game(games, "g8", 2);
  REQUIRE(games.guess("g8", "ana", "crane", "crane").ok());
  {
    gamebot_example::ScoreboardProjector projector(store(), typed, repo());
    REQUIRE(projector.drain(std::chrono::milliseconds(100)) == 5);
  }
  // Pretend the acknowledgements were lost: the subscription starts over.
  const auto done = gamebot_example::scoreboard_position(repo());
  REQUIRE(store().delete_subscription("scoreboard", es::kAllStream));
  gamebot_example::ScoreboardProjector again(store(), typed, repo());
  CHECK(again.drain(std::chrono::milliseconds(100)) == 0);
  CHECK(gamebot_example::scoreboard_position(repo()) == done);
  CHECK(gamebot_example::scoreboard_of(repo(), "g8") ==
        std::vector<gamebot_example::PlayerScore>{{"ana", 1}, {"bo", 0}});
}
