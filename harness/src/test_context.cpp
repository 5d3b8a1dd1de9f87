#include <algorithm>
#include <thread>
#include <utility>

#include "gamebot/harness/database_manager.hpp"
#include "log.hpp"
#include "test_context_state.hpp"

namespace gamebot::harness {

TestContext::TestContext() noexcept = default;
TestContext::TestContext(std::unique_ptr<TestContextState> state) noexcept
    : state_(std::move(state)) {}
TestContext::TestContext(TestContext&&) noexcept = default;
TestContext& TestContext::operator=(TestContext&& other) noexcept {
  if (this != &other) {
    end();
    state_ = std::move(other.state_);
  }
  return *this;
}
TestContext::~TestContext() {
  for (const TestLeak& leak : end())
    detail::log().error("test '{}' leaked: {}", state_ ? state_->name : "", leak.what);
}

const std::string& TestContext::name() const {
  static const std::string empty;
  return state_ ? state_->name : empty;
}

eventstore::EventStore& TestContext::store() {
  if (!state_) throw Error(FaultClass::internal, "TestContext is empty");
  state_->rethrow_setup();
  return *state_->store;
}

const repo::Repo& TestContext::repo() {
  if (!state_) throw Error(FaultClass::internal, "TestContext is empty");
  state_->rethrow_setup();
  if (!state_->repo) {
    throw Error(FaultClass::configuration,
                "the memory backend has no SQL database unless the setup has app_migrations: "
                "add them, or run with --backend sqlite or postgres");
  }
  return *state_->repo;
}

repo::Sandbox* TestContext::sandbox() {
  return state_ ? state_->sandbox.get() : nullptr;
}

std::optional<FaultClass> TestContext::setup_fault() const {
  return state_ ? state_->setup_fault : std::nullopt;
}

std::string TestContext::database() const {
  return state_ && state_->repo ? state_->repo->url().redacted() : std::string();
}

namespace {

// What a leak report says of a transaction left open; `begun_at` is "file:line" when known.
std::string unfinished_transaction(const std::string& begun_at) {
  if (begun_at.empty()) return "a transaction begun on it was never committed or rolled back";
  return "a Transaction begun at " + begun_at + " was never committed or rolled back";
}

// The lease this test's thread still holds from the repo is taken back (inert from now on).
// Runs before the sandbox closes, so closing does not wait for the leaked lease and its rollback
// takes a transaction left open on the lease along.
void check_repo_lease(TestContextState& s, std::vector<TestLeak>& leaks) noexcept {
  try {
    if (const auto lease = s.repo->reclaim_held_by(std::this_thread::get_id())) {
      std::string what = "a ConnectionLease from Repo::acquire() was never released (connection #" +
                         std::to_string(lease->connection_id) + ", the harness took it back)";
      if (lease->open_transaction) {
        what += "; " + unfinished_transaction(lease->transaction_begun_at) + " (rolled back)";
      }
      leaks.push_back({std::move(what)});
    }
  } catch (const std::exception& e) {
    leaks.push_back({std::string("checking the test's repo leases failed: ") + e.what()});
  }
}

// A leak is charged to the one test that made it, and taken back before the next test: what
// this test's thread still holds is reclaimed (an open transaction rolled back), so later tests
// start clean. A connection another thread took during the test is reported, not taken back
// (that thread may still use it); one held before the test began is not this test's.
void check_pool(TestContextState& s, std::vector<TestLeak>& leaks) noexcept {
  try {
    repo::Pool& pool = s.repo->pool();
    if (s.report != nullptr) {
      const repo::PoolStats stats = pool.stats();
      s.report->record_pool_sample(stats.in_use, stats.size);
    }
    for (const repo::ReclaimedConnection& taken :
         pool.reclaim_held_by(std::this_thread::get_id())) {
      std::string what = "connection checked out by " + taken.holder.to_string() +
                         " was never returned (the harness took it back)";
      if (taken.open_transaction) {
        what += "; " + unfinished_transaction(taken.transaction_begun_at) + " (" +
                std::string(taken.rolled_back ? "rolled back" : "the rollback failed") + ")";
      }
      leaks.push_back({std::move(what)});
    }
    for (const repo::CheckoutInfo& holder : pool.checked_out()) {
      if (std::find(s.held_at_begin.begin(), s.held_at_begin.end(), holder.connection_id) !=
          s.held_at_begin.end())
        continue;
      leaks.push_back({"connection still checked out by another thread: " + holder.to_string()});
    }
    const std::uint64_t dirty = pool.stats().dirty_returns;
    if (dirty > s.dirty_returns_before) {
      leaks.push_back({std::to_string(dirty - s.dirty_returns_before) +
                       " connection(s) came back with a transaction left open outside the "
                       "sandbox (rolled back)"});
    }
  } catch (const std::exception& e) {
    leaks.push_back({std::string("checking the test's connections failed: ") + e.what()});
  }
}

}  // namespace

std::vector<TestLeak> TestContext::end() noexcept {
  std::vector<TestLeak> leaks;
  if (!state_ || state_->ended) return leaks;
  TestContextState& s = *state_;
  s.ended = true;
  try {
    if (s.tracker) {
      for (const auto& held : s.tracker->held()) {
        leaks.push_back({"persistent subscription '" + held.subscription + "' on '" +
                         held.stream_id + "' is still subscribed (close it before the test ends)"});
      }
    }
    s.store.reset();
  } catch (const std::exception& e) {
    leaks.push_back({std::string("ending the test failed: ") + e.what()});
  }
  if (s.repo && !s.setup_error) check_repo_lease(s, leaks);
  try {
    if (s.sandbox) s.sandbox->close();
  } catch (const std::exception& e) {
    leaks.push_back({std::string("closing the test's sandbox failed: ") + e.what()});
  }
  s.sandbox.reset();
  if (s.repo && !s.setup_error) check_pool(s, leaks);
  // The test's handles go before the release, so what the strategy drops (a clone, a file) is
  // no longer in use by them.
  s.repo.reset();
  s.tracker.reset();
  try {
    if (s.release) s.release(leaks);
  } catch (const std::exception& e) {
    leaks.push_back({std::string("releasing the test's isolation failed: ") + e.what()});
  }
  s.label.reset();
  if (auto left = std::exchange(s.left, nullptr)) left();
  return leaks;
}

}  // namespace gamebot::harness
