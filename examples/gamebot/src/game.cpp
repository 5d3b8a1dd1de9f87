#include "gamebot_example/game.hpp"

#include <algorithm>
#include <cereal/archives/json.hpp>
#include <sstream>

#include "gamebot_example/events.hpp"

namespace gamebot_example {

namespace es = gamebot::eventstore;

namespace {

constexpr const char* kSnapshotType = "game_state@v1";

std::string encode_state(const GameState& state) {
  std::ostringstream out;
  {
    cereal::JSONOutputArchive archive(out);
    archive(cereal::make_nvp("state", state));
  }
  return out.str();
}

GameState decode_state(const std::string& bytes) {
  std::istringstream in(bytes);
  cereal::JSONInputArchive archive(in);
  GameState state;
  archive(cereal::make_nvp("state", state));
  return state;
}

es::TypedEventData event_of(std::any value) {
  es::TypedEventData data;
  data.value = std::move(value);
  return data;
}

}  // namespace

void apply(GameState& state, const es::TypedEvent& event) {
  if (event.is<GameCreated>()) {
    const auto& created = event.get<GameCreated>();
    state.game_id = created.game_id;
    state.word_length = created.word_length;
    state.rounds = created.rounds;
    state.current_round = 1;
  } else if (event.is<PlayerJoined>()) {
    state.scores.emplace(event.get<PlayerJoined>().player, 0);
  } else if (event.is<RoundCompleted>()) {
    const auto& round = event.get<RoundCompleted>();
    if (!round.winner.empty()) ++state.scores[round.winner];
    state.current_round = round.round + 1;
  } else if (event.is<GameCompleted>()) {
    state.completed = true;
  }
  state.version = event.recorded.event_number;
}

Games::Games(es::EventStore& store, es::TypedEventStore& typed, std::uint32_t snapshot_every)
    : store_(&store), typed_(&typed), snapshot_every_(snapshot_every) {}

GameState Games::load(const std::string& game_id) const {
  GameState state;
  const std::string stream = stream_of(game_id);
  if (auto snapshot = store_->read_snapshot(stream);
      snapshot && snapshot->source_type == kSnapshotType) {
    state = decode_state(snapshot->data);
  }
  for (const es::RecordedEvent& recorded : store_->stream_forward(stream, state.version + 1)) {
    apply(state, typed_->decode(recorded));
  }
  return state;
}

CommandResult Games::create(const std::string& game_id, std::uint32_t word_length,
                            std::uint32_t rounds) {
  if (word_length == 0 || rounds == 0) return {{}, "a game needs a word length and rounds"};
  GameState state;
  std::vector<es::TypedEventData> events;
  events.push_back(event_of(GameCreated{game_id, word_length, rounds}));
  return append(state, std::move(events));
}

CommandResult Games::join(const std::string& game_id, const std::string& player) {
  GameState state = load(game_id);
  if (!state.exists()) return {{}, "no such game"};
  if (state.completed) return {{}, "the game is over"};
  if (player.empty()) return {{}, "a player needs a name"};
  if (state.scores.count(player) != 0) return {{}, "already joined"};
  std::vector<es::TypedEventData> events;
  events.push_back(event_of(PlayerJoined{game_id, player}));
  return append(state, std::move(events));
}

CommandResult Games::guess(const std::string& game_id, const std::string& player,
                           const std::string& guess, const std::string& secret_word) {
  GameState state = load(game_id);
  if (!state.exists()) return {{}, "no such game"};
  if (state.completed) return {{}, "the game is over"};
  if (state.scores.count(player) == 0) return {{}, "not a player of this game"};
  if (guess.size() != state.word_length) return {{}, "wrong word length"};
  const bool correct = guess == secret_word;
  std::vector<es::TypedEventData> events;
  events.push_back(event_of(GuessProcessed{game_id, player, guess, correct, state.current_round}));
  if (correct) {
    events.push_back(event_of(RoundCompleted{game_id, state.current_round, player}));
    if (state.current_round == state.rounds) {
      auto scores = state.scores;
      ++scores[player];
      std::uint32_t best = 0;
      for (const auto& [name, score] : scores) best = std::max(best, score);
      std::vector<std::string> winners;
      for (const auto& [name, score] : scores) {
        if (score == best) winners.push_back(name);
      }
      events.push_back(event_of(GameCompleted{game_id, std::move(winners)}));
    }
  }
  return append(state, std::move(events));
}

CommandResult Games::append(const GameState& state, std::vector<es::TypedEventData> events) {
  const std::string game_id = state.exists()
                                  ? state.game_id
                                  : std::any_cast<const GameCreated&>(events.front().value).game_id;
  const std::string stream = stream_of(game_id);
  CommandResult result;
  result.append = typed_->append(stream, es::ExpectedVersion::exact(state.version), events);
  if (!result.append.ok()) return result;
  // Snapshot when the stream crossed a multiple of snapshot_every_.
  if (snapshot_every_ > 0 &&
      result.append.version / snapshot_every_ != state.version / snapshot_every_) {
    GameState latest = load(game_id);
    es::Snapshot snapshot;
    snapshot.source_id = stream;
    snapshot.source_version = latest.version;
    snapshot.source_type = kSnapshotType;
    snapshot.data = encode_state(latest);
    store_->record_snapshot(std::move(snapshot));
  }
  return result;
}

}  // namespace gamebot_example
