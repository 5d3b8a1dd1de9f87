// Opening stores from database URLs: eventstore::open picks the backend from
// the parsed repo::DatabaseUrl (schemes case-insensitive) and hands each
// backend its options.

#include <catch2/catch.hpp>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore {
namespace {

TEST_CASE("memory: opens a fresh private store each time", "[eventstore][open]") {
  EventStore a = open("memory:");
  EventStore b = open("memory:");
  CHECK(a.backend().scheme() == "memory");
  REQUIRE(a.append("s", 0, EventData{"E", "", "", {}, {}, {}, {}}).ok());
  CHECK(a.head_position() == 1);
  CHECK(b.head_position() == 0);
  CHECK_FALSE(a.options().allow_hard_delete);
  StoreOptions options;
  options.allow_hard_delete = true;
  CHECK(open("memory://", options).options().allow_hard_delete);
}

TEST_CASE("malformed and unknown URLs are configuration errors", "[eventstore][open]") {
  CHECK_THROWS_AS(open("memory"), InvalidArgument);
  CHECK_THROWS_AS(open("memory:some/path"), InvalidArgument);
  try {
    open("mysql://localhost/db");
    FAIL("mysql:// was accepted");
  } catch (const InvalidArgument& error) {
    CHECK(error.fault() == FaultClass::configuration);
    CHECK_THAT(error.what(), Catch::Contains("mysql") && Catch::Contains("memory"));
  }
  StoreOptions bad;
  bad.page_size = 0;
  CHECK_THROWS_AS(open("memory:", bad), InvalidArgument);
}

TEST_CASE("schemes are case-insensitive and route to their backend", "[eventstore][open]") {
  CHECK(open("MEMORY:").backend().scheme() == "memory");
  CHECK(open("Memory://").backend().scheme() == "memory");
  EventStore sqlite = open("SQLite::memory:");
  CHECK(sqlite.backend().scheme() == "sqlite");
  REQUIRE(sqlite.append("s", 0, EventData{"E", "", "", {}, {}, {}, {}}).ok());
  CHECK(sqlite.head_position() == 1);
  CHECK(open(parse_url("SQLITE::memory:")).backend().scheme() == "sqlite");
  // Nothing listens on port 1: reaching a connectivity fault shows the URL
  // went to the PostgreSQL backend (an unrouted scheme is a configuration error).
  for (const char* text :
       {"POSTGRES://nobody@127.0.0.1:1/db", "PostgreSQL://nobody@127.0.0.1:1/db"}) {
    CAPTURE(text);
    try {
      open(text);
      FAIL("opened a store on a closed port");
    } catch (const Error& error) {
      CHECK(error.fault() == FaultClass::connectivity);
    }
  }
}

TEST_CASE("OpenOptions reach the backend the URL names and the URL's own settings win",
          "[eventstore][open]") {
  OpenOptions options;
  options.store.allow_hard_delete = true;
  options.sqlite.busy_timeout = std::chrono::milliseconds(1234);
  EventStore store = open(parse_url("sqlite::memory:"), options);
  CHECK(store.options().allow_hard_delete);
  CHECK(dynamic_cast<SqliteBackend&>(store.backend()).options().busy_timeout ==
        std::chrono::milliseconds(1234));
  EventStore from_url = open(parse_url("sqlite::memory:?busy_timeout=77"), options);
  CHECK(dynamic_cast<SqliteBackend&>(from_url.backend()).options().busy_timeout ==
        std::chrono::milliseconds(77));
}

}  // namespace
}  // namespace gamebot::eventstore
