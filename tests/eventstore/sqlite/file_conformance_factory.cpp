// Conformance factory of the SQLite backend on a file: one temporary directory
// per test case; every open() is a new backend with its own pool and
// connections on the same file, as a restarted process would have.

#include "conformance/conformance.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::eventstore::conformance {

namespace {

class SqliteFileConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override {
    return EventStore(SqliteBackend::open("sqlite:" + directory_.path() + "/store.db"), options);
  }

 private:
  gamebot::testing::TempDir directory_;
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<SqliteFileConformanceBackend>();
}

std::string conformance_backend_name() {
  return "sqlite";
}

}  // namespace gamebot::eventstore::conformance
