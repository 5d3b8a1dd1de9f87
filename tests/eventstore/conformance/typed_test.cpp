// Conformance: typed events through the backend. Binary encodings (NUL bytes)
// and JSON must come back byte for byte, and stored bytes that do not decode
// must surface as a serialization fault, never as a backend fault.

#include <catch2/catch.hpp>
#include <cereal/types/string.hpp>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

namespace ser = gamebot::serializers;

struct Scored {
  std::string player;
  long long points = 0;
  bool operator==(const Scored&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(player), CEREAL_NVP(points));
  }
};

TEST_CASE("typed events round-trip in both codecs and corrupt bytes are serialization faults",
          "[eventstore][typed]") {
  Fixture f;
  ser::TypeRegistry registry;
  registry.register_type<Scored>("scored", 1, {{"ann", 0}});
  const Scored value{"zo\xC3\xAB \"q\" \\ %", -(1LL << 40)};  // binary bytes hold NULs
  for (ser::Codec codec : ser::all_codecs) {
    TypedEventStore typed(f.store, registry, TypedStoreOptions{codec, true});
    REQUIRE(typed.append_value("typed", ExpectedVersion::any(), value).ok());
  }
  TypedEventStore typed(f.store, registry);
  const TypedReadResult read = typed.read_stream_forward("typed");
  REQUIRE(read.events.size() == 2);
  CHECK(read.events[0].get<Scored>() == value);
  CHECK(read.events[1].get<Scored>() == value);

  EventData corrupt;
  corrupt.type = "scored@v1";
  corrupt.data = std::string("\x01\x05\x00\x00", 4);  // binary, truncated
  REQUIRE(f.store.append("typed", 2, corrupt).ok());
  try {
    typed.read_stream_forward("typed");
    FAIL("corrupt bytes decoded");
  } catch (const EventDecodeError& error) {
    CHECK(error.fault() == FaultClass::serialization);
    CHECK(error.stream_id() == "typed");
    CHECK(error.stream_version() == 3);
    CHECK(error.stored_type() == "scored@v1");
  }
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
