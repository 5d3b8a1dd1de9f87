// Hostile-input target: the SQLite backend on a file in a private temporary
// directory per case; tables are listed from sqlite_master.

#include <algorithm>

#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"
#include "hostile_target.hpp"

namespace gamebot::reliability {

namespace {

class SqliteTarget final : public HostileTarget {
 public:
  eventstore::EventStore open() override {
    return eventstore::EventStore(eventstore::SqliteBackend::open("sqlite:" + path()));
  }
  std::vector<std::string> tables() override {
    auto connection = repo::connect("sqlite:" + path());
    std::vector<std::string> names;
    auto rows = connection->query("SELECT name FROM sqlite_master WHERE type = 'table'");
    while (rows.next()) names.push_back(rows.row().get<std::string>(0));
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path() const { return directory_.path() + "/store.db"; }
  gamebot::testing::TempDir directory_;
};

}  // namespace

std::unique_ptr<HostileTarget> make_hostile_target() {
  return std::make_unique<SqliteTarget>();
}

std::string hostile_target_name() {
  return "sqlite";
}

}  // namespace gamebot::reliability
