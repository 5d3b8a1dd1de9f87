// The test support's PostgreSQL URL: GAMEBOT_TEST_PG_URL names a server, never the database a
// test acts on (a test that creates and drops its own database must get that database).

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "gamebot/repo/database_url.hpp"
#include "gamebot/testing/postgres.hpp"

namespace {

// Sets GAMEBOT_TEST_PG_URL for one test and puts back what was there.
class ServerUrl {
 public:
  explicit ServerUrl(const std::string& url) {
    if (const char* old = std::getenv("GAMEBOT_TEST_PG_URL")) old_ = old;
    ::setenv("GAMEBOT_TEST_PG_URL", url.c_str(), 1);
  }
  ~ServerUrl() {
    if (old_) {
      ::setenv("GAMEBOT_TEST_PG_URL", old_->c_str(), 1);
    } else {
      ::unsetenv("GAMEBOT_TEST_PG_URL");
    }
  }
  ServerUrl(const ServerUrl&) = delete;
  ServerUrl& operator=(const ServerUrl&) = delete;

 private:
  std::optional<std::string> old_;
};

std::string database_of(const std::string& url) {
  return gamebot::repo::DatabaseUrl::parse(url).database();
}

}  // namespace

TEST_CASE("GAMEBOT_TEST_PG_URL gives the server, the test names the database",
          "[harness][support]") {
  {
    ServerUrl server("postgresql://postgres@/?host=/run/some-dir");
    const std::string url = gamebot::testing::postgres_url("gamebot_own_db");
    CHECK(database_of(url) == "gamebot_own_db");
    CHECK(gamebot::repo::DatabaseUrl::parse(url).host() == "/run/some-dir");
    CHECK(database_of(gamebot::testing::postgres_url()) == "postgres");
  }
  {
    ServerUrl server("postgresql://tester@db.example:6543");
    const auto url = gamebot::repo::DatabaseUrl::parse(gamebot::testing::postgres_url("other"));
    CHECK(url.database() == "other");
    CHECK(url.port() == "6543");
    CHECK(url.user() == "tester");
  }
}

TEST_CASE("GAMEBOT_TEST_PG_URL naming a database is refused", "[harness][support]") {
  for (const std::string named : {"postgresql://postgres@/production?host=/run/some-dir",
                                  "postgresql://postgres@db.example/production",
                                  "postgresql://postgres@/?host=/run/x&dbname=production"}) {
    CAPTURE(named);
    ServerUrl server(named);
    CHECK_THROWS_AS(gamebot::testing::postgres_url("gamebot_own_db"), std::runtime_error);
  }
}
