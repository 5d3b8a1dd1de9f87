// Hostile-input target: the PostgreSQL backend on the CTest fixture's server,
// in a fresh schema per case (dropped afterwards); tables are listed from
// information_schema.

#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "hostile_target.hpp"
#include "test_schema.hpp"

namespace gamebot::reliability {

namespace {

class PostgresTarget final : public HostileTarget {
 public:
  eventstore::EventStore open() override { return eventstore::EventStore(schema_.open()); }
  std::vector<std::string> tables() override {
    auto connection = repo::connect(schema_.server_url());
    std::vector<std::string> names;
    auto rows = connection->query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 "
        "ORDER BY 1",
        schema_.name());
    while (rows.next()) names.push_back(rows.row().get<std::string>(0));
    return names;
  }

 private:
  eventstore::testing::TestSchema schema_{"hostile"};
};

}  // namespace

std::unique_ptr<HostileTarget> make_hostile_target() {
  return std::make_unique<PostgresTarget>();
}

std::string hostile_target_name() {
  return "postgres";
}

}  // namespace gamebot::reliability
