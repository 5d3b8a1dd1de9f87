#pragma once

// A store holding everything an export must carry: JSON and binary payloads,
// empty payloads, non-canonical JSON, causation/correlation ids, historic
// created_at values, links interleaved with own events, a soft-deleted
// stream, a hard-deleted stream (position holes) and a snapshot.

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::tools::testing {

inline eventstore::EventData rich_event(std::string type, std::string data, std::string metadata) {
  eventstore::EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  return e;
}

inline void populate_rich(eventstore::EventStore& store) {
  using namespace eventstore;
  using namespace std::chrono;
  const std::string binary("\x00\x01\xff\xfe\n\"\\ bytes", 13);
  EventData historic = rich_event("game.created", R"({"game":"g1","words":["a","b"]})", "{}");
  historic.created_at = Timestamp(sys_days(year(1999) / 12 / 31)) + hours(23) + minutes(59) +
                        seconds(58) + microseconds(123456);
  historic.causation_id = Uuid::v7();
  historic.correlation_id = Uuid::v7();
  REQUIRE(store
              .append("game-1", 0,
                      {historic, rich_event("guess", binary, R"({"user":"ü名"})"),
                       rich_event("guess", "", ""),
                       rich_event("spaced", "{ \"not\": \"compact\" }", "[1, 2]"),
                       rich_event("number", "1.5e300", "-0")})
              .ok());
  REQUIRE(store.append("game-2", 0, {rich_event("game.created", R"({"game":"g2"})", "{}")}).ok());
  const ReadResult game1 = store.read_stream_forward("game-1");
  REQUIRE(game1.events.size() == 5);
  // "scores": own event, two links, own event, link (versions 1..5 interleaved).
  REQUIRE(store.append("scores", 0, rich_event("score", R"({"p":1})", "")).ok());
  const std::vector<Uuid> first_links{game1.events[0].event_id, game1.events[1].event_id};
  REQUIRE(store.link("scores", 1, first_links).ok());
  REQUIRE(store.append("scores", 3, rich_event("score", R"({"p":2})", "")).ok());
  const std::vector<Uuid> last_link{game1.events[4].event_id};
  REQUIRE(store.link("scores", 4, last_link).ok());
  // A stream of links only.
  const std::vector<Uuid> only_links{game1.events[2].event_id};
  REQUIRE(store.link("highlights", 0, only_links).ok());
  REQUIRE(store.append("abandoned", 0, {rich_event("x", "1", ""), rich_event("x", "2", "")}).ok());
  REQUIRE(store.delete_stream("abandoned", 2).ok());
  REQUIRE(store.append("purged", 0, {rich_event("y", "1", "")}).ok());
  REQUIRE(store.delete_stream("purged", 1, DeleteMode::hard).ok());
  REQUIRE(store.append("game-2", 1, {rich_event("game.completed", "{}", "{}")}).ok());
  Snapshot snapshot;
  snapshot.source_id = "game-1";
  snapshot.source_version = 5;
  snapshot.source_type = "game.state";
  snapshot.data = binary;
  snapshot.metadata = "{}";
  snapshot.created_at = Timestamp(sys_days(year(2020) / 2 / 29)) + microseconds(7);
  store.record_snapshot(snapshot);
}

// An export without the "position" fields (the only thing a target store assigns itself).
inline std::string without_positions(const std::string& text) {
  static const std::regex position(R"("position":[0-9]+,)");
  return std::regex_replace(text, position, "");
}

}  // namespace gamebot::tools::testing
