#include "provision/memory_provider.hpp"

#include <chrono>
#include <memory>
#include <vector>

#include "env/tracking_backend.hpp"
#include "gamebot/eventstore/memory_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "provision/repo_settings.hpp"
#include "test_context_state.hpp"

namespace gamebot::harness::provision {

namespace {

// memory: one backend for the run, reset after each test. When the application has tables,
// each test also gets a private in-memory SQLite repo with them, so a suite that uses repo()
// runs unchanged on every backend.
struct MemoryProvider final : Provider {
  MemoryProvider(Isolation isolation, const HarnessSetup& setup)
      : isolation_(isolation), app_migrations_(setup.app_migrations) {}
  void begin(TestContextState& s) override {
    s.tracker = std::make_shared<env::TrackingBackend>(backend_);
    s.store.emplace(s.tracker);
    if (!app_migrations_.empty()) {
      // One connection held open for the test: an in-memory database lives as long as it.
      repo::RepoOptions options;
      options.pool.min_size = 1;
      options.pool.max_size = 1;
      options.pool.max_lifetime = std::chrono::milliseconds(0);
      s.repo.emplace(repo::Repo::open("sqlite::memory:", options));
      s.repo->run([&](repo::Connection& connection) {
        repo::Migrator(app_migrations_, app_migrator_options()).migrate(connection);
      });
    }
    if (isolation_ != Isolation::none)
      s.release = [backend = backend_](std::vector<TestLeak>&) { backend->reset(); };
  }
  TeardownOutcome teardown(bool) noexcept override {
    backend_->reset();
    return {};
  }

  Isolation isolation_;
  std::vector<repo::Migration> app_migrations_;
  std::shared_ptr<eventstore::MemoryBackend> backend_ =
      std::make_shared<eventstore::MemoryBackend>();
};

}  // namespace

std::unique_ptr<Provider> make_memory_provider(Isolation isolation, const HarnessSetup& setup) {
  return std::make_unique<MemoryProvider>(isolation, setup);
}

}  // namespace gamebot::harness::provision
