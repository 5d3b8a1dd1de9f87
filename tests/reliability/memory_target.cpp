// Hostile-input target: the in-memory backend (one backend object per case).

#include "hostile_target.hpp"

namespace gamebot::reliability {

namespace {

class MemoryTarget final : public HostileTarget {
 public:
  eventstore::EventStore open() override { return eventstore::EventStore(backend_); }
  std::vector<std::string> tables() override { return {}; }

 private:
  std::shared_ptr<eventstore::MemoryBackend> backend_ =
      std::make_shared<eventstore::MemoryBackend>();
};

}  // namespace

std::unique_ptr<HostileTarget> make_hostile_target() {
  return std::make_unique<MemoryTarget>();
}

std::string hostile_target_name() {
  return "memory";
}

}  // namespace gamebot::reliability
