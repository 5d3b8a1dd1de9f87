// Waiting for events: a wait that runs out is the test's assertion failure, its message says
// what was watched and seen, and a registered name finds what the typed layer stored.

#include "gamebot/harness/wait.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "gamebot/eventstore/memory_backend.hpp"
#include "gamebot/eventstore/typed_event_store.hpp"
#include "test_events.hpp"

using namespace gamebot;
using namespace gamebot::harness;
using gamebot::eventstore::EventData;
using gamebot::eventstore::ExpectedVersion;

namespace {

EventData untyped(const std::string& type) {
  EventData event;
  event.type = type;
  event.data = "{}";
  return event;
}

eventstore::EventStore memory_store() {
  return eventstore::EventStore(std::make_shared<eventstore::MemoryBackend>());
}

// The exception a wait threw, or a failure when it threw none.
EventNotReceived wait_failure(const std::function<void()>& wait) {
  try {
    wait();
  } catch (const EventNotReceived& failure) {
    return failure;
  }
  FAIL("expected EventNotReceived");
  return EventNotReceived("unreachable");
}

constexpr std::chrono::milliseconds kShort{50};

}  // namespace

TEST_CASE("a wait for an event that never comes is an assertion failure listing what it saw",
          "[harness][wait]") {
  eventstore::EventStore store = memory_store();
  store.append("game-1", ExpectedVersion::any(), untyped("game_started"));
  store.append("game-1", ExpectedVersion::any(), untyped("player_left"));
  const EventNotReceived failure =
      wait_failure([&] { assert_receive_event(store, "player_joined", {}, kShort); });
  const std::string message = failure.what();
  CHECK_THAT(message, Catch::Contains("no event of type 'player_joined' arrived within 50 ms"));
  CHECK_THAT(message, Catch::Contains("watching $all from position 1"));
  CHECK_THAT(message,
             Catch::Contains("2 event(s) seen up to position 2: game_started, player_left"));
  CHECK_THAT(message, !Catch::Contains("predicate"));
  // Not a gamebot::Error: nothing may read it as an infrastructure fault.
  CHECK(dynamic_cast<const Error*>(static_cast<const std::exception*>(&failure)) == nullptr);
}

TEST_CASE("a failed wait lists the first 10 types it saw and names a given predicate",
          "[harness][wait]") {
  eventstore::EventStore store = memory_store();
  for (int i = 1; i <= 12; ++i)
    store.append("s", ExpectedVersion::any(), untyped("t" + std::to_string(i)));
  const std::string message = wait_failure([&] {
                                assert_receive_event(
                                    store, "t3", [](const auto&) { return false; }, kShort);
                              }).what();
  CHECK_THAT(message, Catch::Contains("'t3' matching the predicate"));
  CHECK_THAT(message, Catch::Contains("12 event(s) seen up to position 12 (1 of that type): t1, "
                                      "t2, t3, t4, t5, t6, t7, t8, t9, t10, ..."));
  CHECK_THAT(message, !Catch::Contains("t11"));
}

TEST_CASE("a registered name finds the events the typed layer stored under it", "[harness][wait]") {
  eventstore::EventStore store = memory_store();
  const serializers::TypeRegistry registry = test_events::make_game_registry();
  eventstore::TypedEventStore typed(store, registry);
  const test_events::PlayerJoined ana = test_events::player_joined_samples().front();
  typed.append_value("game-1", ExpectedVersion::any(), test_events::game_created_samples().front());
  typed.append_value("game-1", ExpectedVersion::any(), ana);

  const eventstore::RecordedEvent event = assert_receive_event(store, "player_joined", {}, kShort);
  CHECK(event.type == "player_joined@v1");
  CHECK(assert_receive_event(store, "player_joined@v1", {}, kShort).global_position == 2);

  const test_events::PlayerJoined joined =
      assert_receive_event<test_events::PlayerJoined>(typed, {}, kShort);
  CHECK(joined == ana);
  const std::string message =
      wait_failure([&] {
        assert_receive_event<test_events::PlayerJoined>(
            typed,
            [&](const test_events::PlayerJoined& p) { return p.display_name != ana.display_name; },
            kShort);
      }).what();
  CHECK_THAT(message, Catch::Contains("'player_joined' matching the predicate"));
  CHECK_THAT(message, Catch::Contains("game_created@v1, player_joined@v1"));
}

TEST_CASE("a full type tag matches only that version", "[harness][wait]") {
  CHECK(eventstore::event_type_matches("player_joined@v2", "player_joined"));
  CHECK(eventstore::event_type_matches("player_joined@v2", "player_joined@v2"));
  CHECK_FALSE(eventstore::event_type_matches("player_joined@v2", "player_joined@v1"));
  CHECK_FALSE(eventstore::event_type_matches("player_joined_late@v1", "player_joined"));
  CHECK(eventstore::event_type_matches("player_joined", "player_joined"));
}
