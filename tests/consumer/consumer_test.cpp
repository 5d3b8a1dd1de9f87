// A user's test binary: one event type, the harness's Catch2 main, a test per fixture.
#include <catch2/catch.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <string>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/catch2.hpp"

namespace {

struct ScoreRecorded {
  std::string player;
  int points = 0;
  bool operator==(const ScoreRecorded&) const = default;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(CEREAL_NVP(player), CEREAL_NVP(points));
  }
};

gamebot::serializers::TypeRegistry make_registry() {
  gamebot::serializers::TypeRegistry registry;
  registry.register_type<ScoreRecorded>("score_recorded", 1, {{"ana", 3}, {"", -1}});
  return registry;
}

}  // namespace

void gamebot::harness::configure(gamebot::harness::HarnessSetup& setup) {
  setup.registry = make_registry();
}

TEST_CASE_METHOD(gamebot::harness::StoreFixture, "a recorded score is read back from its stream",
                 "[consumer]") {
  const gamebot::serializers::TypeRegistry registry = make_registry();
  gamebot::eventstore::TypedEventStore typed(store(), registry);
  REQUIRE(typed
              .append_value("scores-ana", gamebot::eventstore::ExpectedVersion::no_stream(),
                            ScoreRecorded{"ana", 3})
              .ok());
  auto events = typed.read_stream_forward("scores-ana");
  REQUIRE(events.ok());
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].get<ScoreRecorded>() == ScoreRecorded{"ana", 3});
}

TEST_CASE_METHOD(gamebot::harness::StoreFixture, "each test starts from an empty store",
                 "[consumer]") {
  auto events = store().read_stream_forward("scores-ana");
  CHECK(events.events.empty());
}
