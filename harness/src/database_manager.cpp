#include "gamebot/harness/database_manager.hpp"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>

#include "gamebot/harness/retry.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/repo/pool.hpp"
#include "log.hpp"
#include "preflight_cache.hpp"
#include "provision/memory_provider.hpp"
#include "provision/postgres_provider.hpp"
#include "provision/provider.hpp"
#include "provision/sqlite_provider.hpp"
#include "test_context_state.hpp"

namespace gamebot::harness {

namespace {

std::string phase_screen(Phase phase, FaultClass fault, const std::string& diagnosis) {
  return "gamebot harness: phase " + std::string(to_string(phase)) + " failed (" +
         std::string(gamebot::to_string(fault)) + "); no test was run.\n" + diagnosis;
}

}  // namespace

PhaseFailure::PhaseFailure(Phase phase, FaultClass fault, const std::string& diagnosis)
    : Error(fault, phase_screen(phase, fault, diagnosis)), phase_(phase) {}

// How long a stop request waits for the tests in progress to reach their end after their
// database work was cancelled (see database_manager.hpp).
constexpr std::chrono::seconds kStopGrace{10};

enum class RunState { open, stopping, finished };

struct DatabaseManager::Impl {
  HarnessOptions options;
  HarnessSetup setup;
  RunIdentity identity;
  RunReport report;
  std::unique_ptr<provision::Provider> provider;
  bool started = false;
  std::vector<std::string> kept;
  std::atomic<bool> circuit_open{false};
  TeardownHandle teardown;
  TeardownHandle stop_request;

  // The lifecycle (see the header); guarded by `mutex`.
  std::mutex mutex;
  std::condition_variable idle;  // `starting` ended or `tests` dropped to 0
  RunState state = RunState::open;
  bool starting = false;   // start() is running its phases
  std::size_t tests = 0;   // tests between begin_test() and their end()
  bool abandoned = false;  // a stop went ahead while work was still in progress

  // Enters owner work that uses the provider; false once a stop was requested.
  bool enter_test() {
    std::lock_guard lock(mutex);
    if (state != RunState::open) return false;
    ++tests;
    return true;
  }
  void leave_test() {
    std::lock_guard lock(mutex);
    --tests;
    idle.notify_all();
  }
  void leave_start() {
    std::lock_guard lock(mutex);
    starting = false;
    idle.notify_all();
  }
  bool stopping() {
    std::lock_guard lock(mutex);
    return state != RunState::open;
  }
};

DatabaseManager::DatabaseManager(HarnessOptions options, HarnessSetup setup)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->setup = std::move(setup);
  impl_->identity = detect_run_identity(process_environment());
  set_log_level(impl_->options.log_level);
  impl_->report.set_run_id(impl_->identity.run_id.str());
  impl_->report.set_backend(impl_->options.backend);
  impl_->report.set_isolation(impl_->options.isolation);
}

DatabaseManager::~DatabaseManager() {
  finish();
}

bool DatabaseManager::started() const noexcept {
  return impl_->started;
}
RunReport& DatabaseManager::report() noexcept {
  return impl_->report;
}
const HarnessOptions& DatabaseManager::options() const noexcept {
  return impl_->options;
}
std::string DatabaseManager::run_database() const {
  return impl_->provider ? impl_->provider->run_database() : std::string();
}
std::vector<std::string> DatabaseManager::kept() const {
  return impl_->kept;
}
std::string DatabaseManager::migration_hash() const {
  return impl_->provider ? impl_->provider->migration_hash() : std::string();
}
bool DatabaseManager::template_was_cached() const noexcept {
  return impl_->provider && impl_->provider->template_cached();
}

void DatabaseManager::start() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.started || s.starting)
      throw Error(FaultClass::internal, "DatabaseManager::start() called twice");
    if (s.state != RunState::open)
      throw PhaseFailure(Phase::preflight, FaultClass::internal,
                         "the run was stopped before it started");
    s.starting = true;
  }
  try {
    // The stop request first: once the hooks are in, a signal must find it.
    s.stop_request = stop_requests().add("stop the test environment", [this] { request_stop(); });
    install_process_teardown_hooks();
    s.teardown = process_teardown().add("gamebot test environment", [this] { finish_now(); });
    run_phases();
  } catch (...) {
    s.leave_start();
    finish();
    throw;
  }
  s.started = true;
  s.leave_start();
}

void DatabaseManager::run_phases() {
  Impl& s = *impl_;
  auto run_phase = [&](Phase phase, const std::function<std::string()>& body) {
    // A stop requested during an earlier phase ends start() at this safe point.
    if (s.stopping())
      throw PhaseFailure(phase, FaultClass::internal, "the run was stopped by a signal");
    PhaseTimer timer(s.report, phase);
    try {
      timer.succeed(body());
    } catch (const PhaseFailure& failure) {
      timer.fail(failure);
      throw;
    } catch (const Error& error) {
      timer.fail(error);
      throw PhaseFailure(phase, error.fault(), error.message());
    } catch (const std::exception& error) {
      Error wrapped(FaultClass::internal, error.what());
      timer.fail(wrapped);
      throw PhaseFailure(phase, FaultClass::internal, error.what());
    }
  };

  run_phase(Phase::preflight, [&]() -> std::string {
    if (s.setup.registry.empty()) return "no event types registered";
    const std::optional<std::string> key =
        detail::preflight_key(s.setup.registry, s.setup.conformance);
    if (key) {
      if (const std::optional<std::size_t> entries = detail::remembered_pass(*key))
        return std::to_string(*entries) +
               " type/codec entries conform (passed before with the same code and inputs)";
    }
    auto report = serializers::run_conformance(s.setup.registry, s.setup.conformance);
    if (!report.passed()) {
      throw Error(FaultClass::serialization, "the serializer conformance suite failed (" +
                                                 std::to_string(report.failed_count()) +
                                                 " type/codec entries); no database "
                                                 "was touched:\n" +
                                                 report.to_string(30));
    }
    if (key) detail::remember_pass(*key, report.entries.size());
    return std::to_string(report.entries.size()) + " type/codec entries conform";
  });

  std::unique_ptr<provision::Provider> provider;
  switch (s.options.backend) {
    case Backend::memory:
      provider = provision::make_memory_provider(s.options.isolation, s.setup);
      break;
    case Backend::sqlite:
      provider = provision::make_sqlite_provider(s.options, s.setup, s.identity);
      break;
    case Backend::postgres:
      provider = provision::make_postgres_provider(s.options, s.setup, s.identity);
      break;
  }
  {
    std::lock_guard lock(s.mutex);
    s.provider = std::move(provider);
  }
  run_phase(Phase::connectivity, [&] {
    s.provider->connect(s.report);
    return std::string("connected");
  });
  run_phase(Phase::provisioning, [&] {
    s.provider->provision(s.report);
    return s.provider->run_database() +
           (s.provider->template_cached() ? " (cloned the cached template)" : "");
  });
  run_phase(Phase::schema, [&] {
    s.provider->verify();
    return std::string(s.provider->schema_verified_on_template()
                           ? "schema verified (the template's check is recorded on it)"
                           : "schema verified");
  });
}

TestContext DatabaseManager::begin_test(std::string name) {
  Impl& s = *impl_;
  auto state = std::make_unique<TestContextState>();
  state->name = std::move(name);
  if (!s.started) {
    state->setup_fault = FaultClass::internal;
    state->setup_error = std::make_exception_ptr(
        Error(FaultClass::internal, "begin_test before a successful DatabaseManager::start()"));
    return TestContext(std::move(state));
  }
  if (!s.enter_test()) {
    // The safe point of a stop: the provider may be torn down by now; it is never touched again.
    state->setup_fault = FaultClass::internal;
    const int sig = teardown_signal();
    state->setup_error = std::make_exception_ptr(
        Error(FaultClass::internal,
              sig != 0 ? "the run is stopping (" + std::string(::strsignal(sig)) + "); test not run"
                       : std::string("the run has finished; test not run")));
    return TestContext(std::move(state));
  }
  state->left = [&s] { s.leave_test(); };
  state->label.emplace(state->name);
  RetryPolicy policy;
  policy.deadline = s.circuit_open ? std::chrono::milliseconds(0) : std::chrono::milliseconds(3000);
  policy.max_attempts = s.circuit_open ? 1 : 3;
  policy.on_retry = [&](const RetryAttempt&, const Error&, std::chrono::nanoseconds) {
    s.report.add_retries(1);
  };
  try {
    retry_with_deadline(
        [&] {
          state->store.reset();
          state->sandbox.reset();
          state->repo.reset();
          s.provider->begin(*state);
        },
        policy);
    s.circuit_open = false;
    state->report = &s.report;
    if (state->repo) {
      const repo::PoolStats stats = state->repo->pool().stats();
      s.report.record_pool_sample(stats.in_use, stats.size);
      for (const auto& holder : state->repo->pool().checked_out())
        state->held_at_begin.push_back(holder.connection_id);
    }
  } catch (const Error& error) {
    state->store.reset();
    state->sandbox.reset();
    state->repo.reset();
    state->setup_fault = error.fault();
    state->setup_error = std::current_exception();
    if (error.fault() == FaultClass::connectivity) s.circuit_open = true;
  } catch (const std::exception& error) {
    state->setup_fault = FaultClass::internal;
    state->setup_error = std::current_exception();
  }
  return TestContext(std::move(state));
}

bool DatabaseManager::stop_requested() const noexcept {
  return impl_->stopping();
}

void DatabaseManager::request_stop() noexcept {
  Impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  if (s.state != RunState::open) return;
  s.state = RunState::stopping;
  if (s.tests > 0 && s.provider) {
    // Only while tests run: start() owns the provider alone (its phases have deadlines).
    detail::log().warn("stopping: cancelling the database work of {} test(s) in progress", s.tests);
    lock.unlock();
    s.provider->cancel_in_flight();
    lock.lock();
  }
  // start() is waited for (its phases have deadlines; a third signal still kills at once).
  s.idle.wait(lock, [&] { return !s.starting; });
  // A second signal ends the wait for tests early; it is checked at least every 100 ms.
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  const int signals = teardown_signal_count();
  auto next_cancel = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (s.tests > 0) {
    if (std::chrono::steady_clock::now() >= next_cancel) {
      // A test that entered a database wait after the last cancel.
      lock.unlock();
      s.provider->cancel_in_flight();
      lock.lock();
      next_cancel = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline || teardown_signal_count() > signals) {
      s.abandoned = true;
      detail::log().error(
          "stopping: {} test(s) still running; tearing down the databases without waiting",
          s.tests);
      return;
    }
    s.idle.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void DatabaseManager::finish() noexcept {
  // The owner finishing normally goes through the same two steps as a signal: the stop request
  // (runs here, or waits for the watcher already running it), then the teardown action (runs
  // here, or waits for the watcher), so the caller may destroy the environment right after.
  impl_->stop_request.run_now();
  impl_->teardown.run_now();
  finish_now();
}

void DatabaseManager::finish_now() noexcept {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.state == RunState::finished) return;
    s.state = RunState::finished;
  }
  PhaseTimer timer(s.report, Phase::teardown);
  provision::TeardownOutcome outcome;
  if (s.provider) outcome = s.provider->teardown(s.options.keep);
  s.kept = std::move(outcome.kept);
  // After an abandoned wait a test thread may still hold the provider (its isolation's release
  // refers to it): it is left to the process's end, which the signal brings.
  if (!s.abandoned) s.provider.reset();
  if (outcome.left.empty()) {
    timer.succeed(s.kept.empty() ? "everything removed" : "kept " + std::to_string(s.kept.size()));
  } else {
    std::string what = "could not remove what the run created:";
    for (const auto& line : outcome.left) what += "\n  " + line;
    timer.fail(Error(FaultClass::provisioning, what));
  }
  try {
    if (!s.options.report_path.empty()) s.report.write_json(s.options.report_path);
  } catch (const std::exception& e) {
    detail::log().error("{}", e.what());
  }
}

}  // namespace gamebot::harness
