#pragma once

// A fresh PostgreSQL schema on the CTest fixture's server for one test (or one
// conformance case), dropped with everything in it by the destructor, so
// tests (also of several ctest processes at once) never see each other's data.

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::eventstore::testing {

class TestSchema {
 public:
  explicit TestSchema(std::string_view prefix = "es_test")
      : TestSchema(gamebot::testing::postgres_url(), prefix) {}
  // The same on the server (or pooler) at `server_url`, a URL naming database "postgres".
  TestSchema(std::string server_url, std::string_view prefix)
      : url_(std::move(server_url)), name_(unique_name(prefix)) {}
  ~TestSchema() {
    try {
      auto admin = repo::connect(url_);
      admin->execute_batch("DROP SCHEMA IF EXISTS " + repo::quote_identifier(name_) + " CASCADE");
    } catch (...) {
      // Leftovers only cost space on a throwaway server.
    }
  }
  TestSchema(const TestSchema&) = delete;
  TestSchema& operator=(const TestSchema&) = delete;

  // The server's URL (database "postgres"), without a schema parameter.
  const std::string& server_url() const noexcept { return url_; }
  const std::string& name() const noexcept { return name_; }
  // An event store URL of this schema.
  std::string store_url() const {
    return url_ + (url_.find('?') == std::string::npos ? "?" : "&") + "schema=" + name_;
  }
  PostgresBackendOptions options() const {
    PostgresBackendOptions options;
    options.schema = name_;
    return options;
  }
  // A backend on its own repo.
  std::shared_ptr<PostgresBackend> open(PostgresBackendOptions options) const {
    options.schema = name_;
    return PostgresBackend::open(url_, std::move(options));
  }
  std::shared_ptr<PostgresBackend> open() const { return open(PostgresBackendOptions{}); }

 private:
  static std::string unique_name(std::string_view prefix) {
    static std::atomic<int> counter{0};
    return fmt::format("{}_{}_{}", prefix, ::getpid(), ++counter);
  }

  std::string url_;
  std::string name_;
};

}  // namespace gamebot::eventstore::testing
