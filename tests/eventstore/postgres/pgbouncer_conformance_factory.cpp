// Conformance factory of the PostgreSQL backend through PgBouncer in
// transaction pooling mode (the CTest fixture "pgbouncer": a pool of a few
// server connections that every client shares): every connection of the store
// (its pool, the polling background connection, the lease connections) goes
// through the pooler, with the store's pooling=transaction. Every case gets a
// schema of its own, as on the direct server.

#include "conformance/conformance.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore::conformance {

namespace {

class PgBouncerConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override {
    PostgresBackendOptions backend;
    backend.pooling = PostgresPooling::transaction;
    return EventStore(schema_.open(backend), options);
  }

 private:
  testing::TestSchema schema_{gamebot::testing::pgbouncer_url(), "es_pgbouncer"};
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<PgBouncerConformanceBackend>();
}

std::string conformance_backend_name() {
  return "postgres via pgbouncer";
}

}  // namespace gamebot::eventstore::conformance
