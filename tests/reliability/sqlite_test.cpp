// SQLite specifics of hostile input: a store file whose path needs quoting in
// SQL and percent-encoding in the URL, and a payload within the store's limit
// (kMaxEventPayloadBytes, 1 GiB) but above SQLite's own (SQLITE_MAX_LENGTH,
// 1,000,000,000 bytes in Debian's build).

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::reliability {
namespace {

using eventstore::EventData;
using eventstore::EventStore;
using eventstore::ExpectedVersion;

std::string percent_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '/' || c == '.' || c == '-' || c == '_') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

EventData event(std::string type, std::string data) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

TEST_CASE("a store file whose path needs quoting opens under exactly that path",
          "[reliability][hostile][sqlite]") {
  gamebot::testing::TempDir directory;
  const std::string neighbour = directory.path() + "/it.db";
  const std::string odd = directory.path() + "/it's a \"game\"; 100% ?#ü.db";
  {
    EventStore store(eventstore::SqliteBackend::open("sqlite:" + neighbour));
    REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", "neighbour")).ok());
  }
  {
    EventStore store = eventstore::open("sqlite:" + percent_encode(odd));
    REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", "odd")).ok());
  }
  CHECK(std::filesystem::exists(odd));
  EventStore reopened(eventstore::SqliteBackend::open("sqlite:" + percent_encode(odd)));
  auto read = reopened.read_stream_forward("s");
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].data == "odd");
  EventStore other(eventstore::SqliteBackend::open("sqlite:" + neighbour));
  auto neighbour_read = other.read_stream_forward("s");
  REQUIRE(neighbour_read.events.size() == 1);
  CHECK(neighbour_read.events[0].data == "neighbour");
}

TEST_CASE("a payload above SQLite's length limit is a typed error and writes nothing",
          "[reliability][hostile][sqlite][limits]") {
  gamebot::testing::TempDir directory;
  const std::string url = "sqlite:" + directory.path() + "/store.db";
  EventStore store(eventstore::SqliteBackend::open(url));
  REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", "kept")).ok());
  {
    // Within kMaxEventPayloadBytes, so the store passes it to the backend, whose
    // bind is refused by SQLite (SQLITE_TOOBIG) and the insert then fails.
    const std::string data(std::size_t{1'000'000'001}, 'x');
    REQUIRE(data.size() < eventstore::kMaxEventPayloadBytes);
    try {
      store.append("s", ExpectedVersion::any(), {event("E", "lost?"), event("Huge", data)});
      FAIL("a payload above SQLite's limit was accepted");
    } catch (const gamebot::Error& error) {
      INFO(error.what());
      CHECK(error.fault() == FaultClass::integrity);
    }
  }
  EventStore reopened(eventstore::SqliteBackend::open(url));
  auto read = reopened.read_stream_forward("s");
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].data == "kept");
  CHECK(reopened.head_position() == 1);
}

}  // namespace
}  // namespace gamebot::reliability
