// Conformance factory of the in-memory backend. "Reopening" opens a new
// EventStore (new subscriptions, new persistent-subscription groups) over the
// same MemoryBackend object, which is what survives a subscriber restart in
// one process.

#include "conformance/conformance.hpp"

namespace gamebot::eventstore::conformance {

namespace {

class MemoryConformanceBackend final : public ConformanceBackend {
 public:
  EventStore open(StoreOptions options) override { return EventStore(backend_, options); }

 private:
  std::shared_ptr<MemoryBackend> backend_ = std::make_shared<MemoryBackend>();
};

}  // namespace

std::unique_ptr<ConformanceBackend> make_conformance_backend() {
  return std::make_unique<MemoryConformanceBackend>();
}

std::string conformance_backend_name() {
  return "memory";
}

}  // namespace gamebot::eventstore::conformance
