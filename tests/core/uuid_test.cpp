#include "gamebot/core/uuid.hpp"

#include <catch2/catch.hpp>
#include <set>

using gamebot::Uuid;

TEST_CASE("uuid parses its own canonical form and rejects malformed text", "[core][uuid]") {
  Uuid id = Uuid::v4();
  auto parsed = Uuid::parse(id.to_string());
  REQUIRE(parsed);
  CHECK(*parsed == id);
  CHECK(Uuid::parse("0189F7A0-0000-7000-8000-00000000000A")->to_string() ==
        "0189f7a0-0000-7000-8000-00000000000a");
  CHECK_FALSE(Uuid::parse(""));
  CHECK_FALSE(Uuid::parse("0189f7a0-0000-7000-8000-00000000000"));
  CHECK_FALSE(Uuid::parse("0189f7a0x0000-7000-8000-00000000000a"));
  CHECK_FALSE(Uuid::parse("0189f7a0-0000-7000-8000-00000000000g"));
  CHECK(Uuid().is_nil());
}

TEST_CASE("uuid v7 values are version 7 and strictly increasing", "[core][uuid]") {
  Uuid previous = Uuid::v7();
  std::set<Uuid> seen{previous};
  for (int i = 0; i < 20000; ++i) {
    Uuid next = Uuid::v7();
    REQUIRE(previous < next);
    REQUIRE((next.bytes()[6] >> 4) == 7);
    REQUIRE((next.bytes()[8] & 0xC0) == 0x80);
    seen.insert(next);
    previous = next;
  }
  CHECK(seen.size() == 20001);
}
