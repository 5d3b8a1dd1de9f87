// Conformance factory of the PostgreSQL backend: every case gets a schema of
// its own on the fixture server. Reopening opens a new PostgresBackend (its own
// pool, listener and lease connections) on the same schema, as another
// process would.

#include "conformance/conformance.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore::conformance {

namespace {

class PostgresConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override { return EventStore(schema_.open(), options); }

 private:
  testing::TestSchema schema_{"es_conformance"};
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<PostgresConformanceBackend>();
}

std::string conformance_backend_name() {
  return "postgres";
}

}  // namespace gamebot::eventstore::conformance
