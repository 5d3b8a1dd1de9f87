// The JSON codec's output is what PostgreSQL jsonb accepts, and what jsonb
// hands back (keys reordered, numbers normalised) decodes to the same value.

#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "gamebot/serializers/serializers.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_events.hpp"

using namespace gamebot::serializers;
using namespace gamebot::test_events;

namespace {

struct ConnectionCloser {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Connection = std::unique_ptr<PGconn, ConnectionCloser>;
using Result = std::unique_ptr<PGresult, ResultClearer>;

Connection connect() {
  Connection connection(PQconnectdb(gamebot::testing::postgres_url().c_str()));
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    FAIL("cannot connect to the test server: " << PQerrorMessage(connection.get()));
  }
  return connection;
}

// Round-trips `json` through a jsonb value; returns jsonb's text form.
std::string through_jsonb(PGconn* connection, const std::string& json) {
  const char* values[] = {json.c_str()};
  Result result(
      PQexecParams(connection, "SELECT $1::jsonb::text", 1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    FAIL("jsonb rejected " << json << ": " << PQresultErrorMessage(result.get()));
  }
  return PQgetvalue(result.get(), 0, 0);
}

template <class T>
void check_samples(PGconn* connection, const TypeRegistry& registry,
                   const std::vector<T>& samples) {
  for (const T& sample : samples) {
    const Encoded encoded = registry.encode(sample, Codec::json);
    const std::string normalised = through_jsonb(connection, encoded.bytes);
    INFO(encoded.bytes << "\n-> jsonb -> " << normalised);
    CHECK(registry.decode<T>(encoded.type, encoded.version, Codec::json, normalised) == sample);
  }
}

}  // namespace

TEST_CASE("jsonb accepts every JSON encoding and gives back the same values",
          "[serializers][jsonb]") {
  const Connection connection = connect();
  const TypeRegistry registry = make_game_registry();
  check_samples(connection.get(), registry, game_created_samples());
  check_samples(connection.get(), registry, player_joined_samples());
  check_samples(connection.get(), registry, guess_processed_samples());

  // What the JSON codec refuses is indeed what jsonb refuses.
  const char* refused[] = {R"({"x": NaN})", R"({"x": "a\u0000b"})"};
  for (const char* json : refused) {
    const char* values[] = {json};
    Result result(PQexecParams(connection.get(), "SELECT $1::jsonb", 1, nullptr, values, nullptr,
                               nullptr, 0));
    CHECK(PQresultStatus(result.get()) == PGRES_FATAL_ERROR);
  }
}
