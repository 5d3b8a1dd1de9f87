#include "test_database.hpp"

#include <stdexcept>

#include "gamebot/core/uuid.hpp"

#ifndef GAMEBOT_REPO_TEST_BACKEND
#define GAMEBOT_REPO_TEST_BACKEND "sqlite-file"
#endif

namespace gamebot::repo::testing {

std::string_view backend_name() {
  return GAMEBOT_REPO_TEST_BACKEND;
}

std::unique_ptr<Connection> postgres_admin() {
  return repo::connect(DatabaseUrl::parse(gamebot::testing::postgres_url()));
}

TestDatabase::TestDatabase() {
  std::string unique = Uuid::v4().to_string();
  std::string backend(backend_name());
  if (backend == "sqlite-file") {
    dir_ = std::make_unique<gamebot::testing::TempDir>();
    url_ = DatabaseUrl::sqlite_file(dir_->path() + "/test.db");
  } else if (backend == "sqlite-memory") {
    url_ = DatabaseUrl::sqlite_memory("repo-test-" + unique);
    anchor_ = repo::connect(url_);
  } else if (backend == "postgres") {
    // A schema per test is far cheaper than a database; the URL puts it first on the
    // search_path, so unqualified names (and the migrations table) land there.
    pg_schema_ = "gbrepo_" + unique.substr(0, 8) + unique.substr(9, 4);
    auto admin = postgres_admin();
    admin->execute_batch("CREATE SCHEMA " + quote_identifier(pg_schema_));
    url_ = DatabaseUrl::parse(gamebot::testing::postgres_url())
               .with_parameter("options", "-c search_path=" + pg_schema_);
  } else {
    throw std::logic_error("unknown test backend " + backend);
  }
}

TestDatabase::~TestDatabase() {
  anchor_.reset();
  if (!pg_schema_.empty()) {
    try {
      auto admin = postgres_admin();
      admin->execute_batch("DROP SCHEMA IF EXISTS " + quote_identifier(pg_schema_) + " CASCADE");
    } catch (...) {
      // The fixture server is removed after the run anyway.
    }
  }
}

}  // namespace gamebot::repo::testing
