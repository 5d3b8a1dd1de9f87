// Conformance factory of the PostgreSQL backend with its reads on the streaming
// replica of the fixture server (the CTest fixture "pg-replica"): read_all,
// read_stream, head_position, stream_info, list_streams and the subscriptions'
// catch-up reads are served by the replica, with read-your-writes on (the suite
// reads what it just wrote); writes, checkpoints and leases stay on the
// primary. Every case gets a schema of its own, as on the direct server.

#include "conformance/conformance.hpp"
#include "gamebot/eventstore/open.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore::conformance {

namespace {

class ReplicaConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override {
    PostgresBackendOptions backend;
    backend.read_url = parse_url(gamebot::testing::replica_url());
    backend.replica_read_your_writes = true;
    return EventStore(schema_.open(backend), options);
  }

 private:
  testing::TestSchema schema_{"es_replica"};
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<ReplicaConformanceBackend>();
}

std::string conformance_backend_name() {
  return "postgres with reads on a replica";
}

}  // namespace gamebot::eventstore::conformance
