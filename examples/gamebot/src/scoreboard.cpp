#include "gamebot_example/scoreboard.hpp"

#include "gamebot/repo/transaction.hpp"
#include "gamebot_example/events.hpp"

namespace gamebot_example {

namespace es = gamebot::eventstore;

std::vector<gamebot::repo::Migration> scoreboard_migrations() {
  return {
      {1, "create_scoreboard",
       "CREATE TABLE scoreboard_players (game_id TEXT NOT NULL, player TEXT NOT NULL, "
       "score BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (game_id, player));"
       "CREATE TABLE scoreboard_position (id INTEGER PRIMARY KEY, position BIGINT NOT NULL);"
       "INSERT INTO scoreboard_position (id, position) VALUES (1, 0);"},
  };
}

std::vector<PlayerScore> scoreboard_of(const gamebot::repo::Repo& repo,
                                       const std::string& game_id) {
  return repo.run([&](gamebot::repo::Connection& connection) {
    std::vector<PlayerScore> scores;
    auto result = connection.query(
        "SELECT player, score FROM scoreboard_players WHERE game_id = $1 "
        "ORDER BY score DESC, player",
        game_id);
    while (result.next()) {
      scores.push_back({result.row().get<std::string>(0), result.row().get<std::int64_t>(1)});
    }
    return scores;
  });
}

std::int64_t scoreboard_position(const gamebot::repo::Repo& repo) {
  return repo.run([](gamebot::repo::Connection& connection) {
    return connection
        .query_value<std::int64_t>("SELECT position FROM scoreboard_position WHERE id = 1")
        .value_or(0);
  });
}

ScoreboardProjector::ScoreboardProjector(es::EventStore& store, es::TypedEventStore& typed,
                                         gamebot::repo::Repo repo)
    : typed_(&typed),
      repo_(std::move(repo)),
      subscription_(store.subscribe_persistent("scoreboard", es::kAllStream)) {}

std::size_t ScoreboardProjector::drain(std::chrono::milliseconds idle) {
  std::size_t applied = 0;
  while (auto recorded = subscription_.next(idle)) {
    repo_.run_in_transaction([&](gamebot::repo::Connection& connection) {
      const auto position = static_cast<std::int64_t>(recorded->global_position);
      const auto done =
          connection
              .query_value<std::int64_t>("SELECT position FROM scoreboard_position WHERE id = 1")
              .value_or(0);
      if (position <= done) return;  // a redelivery: already applied
      const es::TypedEvent event = typed_->decode(*recorded);
      if (event.is<PlayerJoined>()) {
        const auto& joined = event.get<PlayerJoined>();
        connection.execute(
            "INSERT INTO scoreboard_players (game_id, player, score) VALUES ($1, $2, 0) "
            "ON CONFLICT DO NOTHING",
            joined.game_id, joined.player);
      } else if (event.is<RoundCompleted>()) {
        const auto& round = event.get<RoundCompleted>();
        if (!round.winner.empty()) {
          connection.execute(
              "UPDATE scoreboard_players SET score = score + 1 WHERE game_id = $1 AND player = $2",
              round.game_id, round.winner);
        }
      }
      connection.execute("UPDATE scoreboard_position SET position = $1 WHERE id = 1", position);
      ++applied;
    });
    subscription_.ack(*recorded);
  }
  return applied;
}

}  // namespace gamebot_example
