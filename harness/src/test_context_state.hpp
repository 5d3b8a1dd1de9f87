#pragma once

// What one TestContext holds between DatabaseManager::begin_test() and TestContext::end(): the
// provider fills it in begin(), TestContext::end() checks it for leaks and releases it.

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "env/tracking_backend.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/report.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/sandbox.hpp"

namespace gamebot::harness {

struct TestContextState {
  std::string name;
  std::optional<repo::ScopedCheckoutLabel> label;
  std::shared_ptr<env::TrackingBackend> tracker;
  std::optional<eventstore::EventStore> store;
  std::optional<repo::Repo> repo;
  std::unique_ptr<repo::Sandbox> sandbox;
  std::exception_ptr setup_error;
  std::optional<FaultClass> setup_fault;
  std::uint64_t dirty_returns_before = 0;
  std::vector<std::uint64_t> held_at_begin;  // connections checked out before the test began
  RunReport* report = nullptr;  // where the pool's use is sampled as the test begins and ends
  std::function<void(std::vector<TestLeak>&)> release;  // strategy cleanup, after leak checks
  std::function<void()> left;  // tells the environment the test reached its end (safe point)
  bool ended = false;

  void rethrow_setup() const {
    if (setup_error) std::rethrow_exception(setup_error);
  }
};

}  // namespace gamebot::harness
