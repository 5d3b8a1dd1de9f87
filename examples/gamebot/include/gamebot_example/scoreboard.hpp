#pragma once

// The scoreboard read model: players and their scores per game, kept in SQL
// tables through gamebot::repo and fed by a persistent subscription on `$all`.
// Delivery is at-least-once, so the projection records the last position it
// applied in the same transaction as its rows and skips anything at or below
// it: a redelivered event changes nothing.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/typed_event_store.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot_example {

// The read model's tables (SQL valid on SQLite and PostgreSQL).
std::vector<gamebot::repo::Migration> scoreboard_migrations();

struct PlayerScore {
  std::string player;
  std::int64_t score = 0;
  bool operator==(const PlayerScore&) const = default;
};

// Queries on the read model.
std::vector<PlayerScore> scoreboard_of(const gamebot::repo::Repo& repo, const std::string& game_id);
// The last `$all` position the projection applied (0 before any).
std::int64_t scoreboard_position(const gamebot::repo::Repo& repo);

// Drives the projection from the persistent subscription "scoreboard" on
// `$all`. Not thread-safe: one thread calls drain(). Borrows its arguments.
class ScoreboardProjector {
 public:
  ScoreboardProjector(gamebot::eventstore::EventStore& store,
                      gamebot::eventstore::TypedEventStore& typed, gamebot::repo::Repo repo);

  // Applies every event that arrives until none has come for `idle`; returns
  // how many were applied. Each event is applied in its own repo transaction
  // and acknowledged after it commits.
  std::size_t drain(std::chrono::milliseconds idle);

 private:
  gamebot::eventstore::TypedEventStore* typed_;
  gamebot::repo::Repo repo_;
  gamebot::eventstore::Subscription subscription_;
};

}  // namespace gamebot_example
