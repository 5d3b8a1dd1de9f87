#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gamebot/repo/repo.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::repo::testing {

// The backend an executable was built for (GAMEBOT_REPO_TEST_BACKEND): "sqlite-file",
// "sqlite-memory" or "postgres".
std::string_view backend_name();

// A fresh, empty database for one test on the executable's backend, removed by the destructor:
// a file in a temp dir, a named shared in-memory database (kept alive by an anchor connection),
// or a PostgreSQL schema (first on the search_path) on the CTest fixture's server.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const DatabaseUrl& url() const noexcept { return url_; }
  Driver driver() const noexcept { return url_.driver(); }
  bool postgres() const noexcept { return url_.driver() == Driver::postgres; }
  std::unique_ptr<Connection> connect() const { return repo::connect(url_); }
  // Picks the DDL for the driver.
  std::string sql(std::string_view postgres_sql, std::string_view sqlite_sql) const {
    return std::string(postgres() ? postgres_sql : sqlite_sql);
  }

 private:
  std::unique_ptr<gamebot::testing::TempDir> dir_;
  std::unique_ptr<Connection> anchor_;
  std::string pg_schema_;
  DatabaseUrl url_;
};

// A PostgreSQL superuser connection to the fixture server's "postgres" database.
std::unique_ptr<Connection> postgres_admin();

}  // namespace gamebot::repo::testing
