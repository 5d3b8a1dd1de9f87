#include "test_database.hpp"

#include <stdexcept>

#include "gamebot/core/uuid.hpp"

#ifndef GAMEBOT_REPO_TEST_BACKEND
#define GAMEBOT_REPO_TEST_BACKEND "sqlite-file"
#endif

namespace gamebot::repo::testing {

std::string_view backend_name() { return GAMEBOT_REPO_TEST_BACKEND; }

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
    pg_database_ = "gbrepo_" + unique.substr(0, 8) + unique.substr(9, 4);
    auto admin = postgres_admin();
    admin->execute_batch("CREATE DATABASE " + quote_identifier(pg_database_));
    url_ = DatabaseUrl::parse(gamebot::testing::postgres_url(pg_database_));
  } else {
    throw std::logic_error("unknown test backend " + backend);
  }
}

TestDatabase::~TestDatabase() {
  anchor_.reset();
  if (!pg_database_.empty()) {
    try {
      auto admin = postgres_admin();
      admin->execute_batch("DROP DATABASE IF EXISTS " + quote_identifier(pg_database_) +
                           " WITH (FORCE)");
    } catch (...) {
      // The fixture server is removed after the run anyway.
    }
  }
}

}  // namespace gamebot::repo::testing
