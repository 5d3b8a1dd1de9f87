// Conformance factory of the SQLite backend on an in-memory database
// (sqlite::memory:). Such a database lives in one process and only as long as
// a connection to it, so the test state is a repo::Repo (its pool keeps the
// database) and every open() is a new backend on that repo, sharing the
// data as a restarted subscriber in the same process would.

#include "conformance/conformance.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"

namespace gamebot::eventstore::conformance {

namespace {

repo::Repo memory_repo() {
  repo::RepoOptions options;
  options.pool.max_size = 1;  // as SqliteBackend::open does for sqlite::memory:
  return repo::Repo::open("sqlite::memory:", options);
}

class SqliteMemoryConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override {
    return EventStore(std::make_shared<SqliteBackend>(repo_), options);
  }

 private:
  repo::Repo repo_ = memory_repo();
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<SqliteMemoryConformanceBackend>();
}

std::string conformance_backend_name() {
  return "sqlite_memory";
}

}  // namespace gamebot::eventstore::conformance
