#pragma once

// The test database manager (the seed's DatabaseManager, done right), without
// any test framework. A run goes through the phases of report.hpp in strict
// order; start() runs the first four and throws PhaseFailure at the first that
// fails, before any test has started:
//
//   1. preflight     the serializer conformance suite over the registry (no database yet);
//   2. connectivity  connect with backoff + jitter under HarnessOptions::connect_deadline
//                    (authentication is never retried);
//   3. provisioning  this run's database (PostgreSQL `gamebot_test_<runid>[_w<worker>]`, a clone
//                    of a template database keyed by the migration hash; SQLite: a 0700 run
//                    directory), each carrying a RunMarker; orphans of dead runs reaped first;
//   4. schema        tables, indexes, functions and migration versions checked (also on a
//                    cached template before it is trusted).
//
// Then begin_test() gives each test an isolated store and repo (see TestContext), and finish()
// (or the destructor, or process_teardown() on exit and on signals) tears everything down.
//
// Lifecycle: one owner of the run's resources. The state moves only forward:
//
//   open      start() and tests may run. The owner's thread runs start(); test threads hold
//             the provider's resources between begin_test() and their TestContext::end().
//   stopping  request_stop() was called: by the signal watcher (stop_requests(), see
//             teardown.hpp) or by finish(). begin_test() no longer touches the provider: it
//             returns a context whose setup fault says the run is stopping (the safe point at
//             the start of a test), and start() fails at its next phase boundary.
//             request_stop() cancels the database work of the tests in progress (PostgreSQL:
//             pg_cancel_backend on the run's databases from a connection of its own, so no
//             client object another thread uses is touched; their queries fail with
//             "canceling statement", the tests end), then waits until start() and every test
//             in progress have reached their end (the safe point at the end of a test). It
//             waits for tests at most 10 s, or until a second signal; then it gives up and
//             marks the run abandoned: the databases are still dropped and the server stopped
//             (the tests see errors, never freed memory), and the in-process objects are left
//             to the process's end, which the signal brings.
//   finished  the teardown ran (finish_now(): by the watcher after the stop request, or by
//             finish()); nothing the provider held exists any more except after an abandon.
//
// Only request_stop() moves open -> stopping and only the teardown moves -> finished, each
// under the environment's mutex; so a test thread never touches a torn-down resource.
//
// Markers. PostgreSQL: the RunMarker text is the database's COMMENT (readable from
// pg_database by any connection, so the reaper never has to guess or connect to it). SQLite: a
// marker file `gamebot-run-marker` in the run directory. Nothing without a marker is ever
// dropped, truncated or migrated; the database a --database-url names is only used to connect
// and is never changed. What may be removed and when an owner is gone: marked_resources.hpp.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/report.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/sandbox.hpp"
#include "gamebot/serializers/conformance.hpp"
#include "gamebot/serializers/type_registry.hpp"

namespace gamebot::harness {

// A database object the application's migrations must have created; checked in phase 4.
struct ExpectedObject {
  enum class Kind { table, index, function };
  Kind kind = Kind::table;
  std::string name;  // unqualified (PostgreSQL: looked up in the search path's first schema)
};

// What the user's test binary contributes to the run.
struct HarnessSetup {
  serializers::TypeRegistry registry;             // event types checked by the preflight
  serializers::ConformanceOptions conformance{};  // golden directory, codecs, limits
  std::vector<repo::Migration> app_migrations;   // the application's own tables (after the store's)
  std::vector<ExpectedObject> expected_objects;  // application objects phase 4 requires
  // Age past which another host's marker without a server lease is an orphan (see is_orphan()).
  std::chrono::seconds orphan_grace = kDefaultOrphanGrace;
  std::size_t test_threads = 1;  // threads one test uses at most (sizes the pool)
  // PostgreSQL `database` / `schema` isolation: clones or schemas kept ready (created, marked and
  // connected) by a background thread, so a test's setup only takes one; used ones are dropped
  // behind by another thread, and the teardown drains both queues.
  std::size_t prepared_clones = 2;
};

// A phase of start() failed. what() is one screen: the phase, the fault class and the
// diagnosis (never a password). fault() is the underlying fault class.
class PhaseFailure : public Error {
 public:
  PhaseFailure(Phase phase, FaultClass fault, const std::string& diagnosis);
  Phase phase() const noexcept { return phase_; }

 private:
  Phase phase_;
};

// What a test left behind, found when it ended (each is reported with the test's name).
struct TestLeak {
  std::string what;  // "connection checked out by 'x' on thread 12 since ...", ...
};

class DatabaseManager;
struct TestContextState;

// One test's isolated store and repo. Move-only; end() or the destructor rolls back / resets /
// drops (per the isolation strategy) and checks for leaks. Use it on the thread that began it
// (other threads: Sandbox allowances through sandbox()).
class TestContext {
 public:
  TestContext() noexcept;
  TestContext(TestContext&&) noexcept;
  TestContext& operator=(TestContext&&) noexcept;
  TestContext(const TestContext&) = delete;
  TestContext& operator=(const TestContext&) = delete;
  ~TestContext();  // end(), leaks logged

  const std::string& name() const;
  // The isolated event store. Throws the fault that prevented the isolation from being set up
  // (an infrastructure fault: connectivity, timeout, pool_exhausted), if any.
  eventstore::EventStore& store();
  // The isolated repo (the sandboxed repo under `transaction`). On the memory backend: a private
  // in-memory SQLite database with the setup's app_migrations applied, or, when there are none,
  // gamebot::Error(configuration).
  const repo::Repo& repo();
  // The sandbox of `transaction` isolation (nullptr otherwise), for allow()/Allowance.
  repo::Sandbox* sandbox();
  // The fault recorded when setting up the isolation failed; nullopt when it is usable.
  std::optional<FaultClass> setup_fault() const;
  // Where the test's store lives: its repo's URL, redacted (a PostgreSQL schema of `schema`
  // isolation shows in it); empty when the isolation could not be set up.
  std::string database() const;

  // Ends the test: closes subscriptions' check, rolls back / resets / drops, and returns what
  // the test leaked (checked-out connections, transactions left open, persistent subscriptions
  // still subscribed). Idempotent (later calls return nothing). noexcept: failures are leaks.
  std::vector<TestLeak> end() noexcept;

 private:
  friend class DatabaseManager;
  explicit TestContext(std::unique_ptr<TestContextState> state) noexcept;
  std::unique_ptr<TestContextState> state_;
};

// The run. Not thread-safe except begin_test()/TestContext (one per thread at a time),
// request_stop()/stop_requested() and report(). Move-less (it registers teardown actions that refer
// to it).
class DatabaseManager {
 public:
  DatabaseManager(HarnessOptions options, HarnessSetup setup);
  ~DatabaseManager();  // finish()
  DatabaseManager(const DatabaseManager&) = delete;
  DatabaseManager& operator=(const DatabaseManager&) = delete;

  // Runs phases 1-4. Throws PhaseFailure at the first that fails (the run must stop; what was
  // provisioned is torn down first). Call once.
  void start();
  bool started() const noexcept;

  // An isolated context for the test `name` (its name labels pool checkouts and leak reports).
  // Never throws for infrastructure faults: they are recorded in the context (setup_fault(),
  // thrown by store()/repo()) so the test fails as an infrastructure failure. Retries such faults
  // within a small budget; after a connectivity fault the next tests try once, quickly (a dead
  // server costs each test milliseconds, not the connect deadline). Requires start().
  TestContext begin_test(std::string name);

  // Tears everything down (drops databases and schemas with our marker, stops an ephemeral
  // server; with --keep prints and keeps the databases), logs the summary and writes the JSON
  // report when --report was given. Idempotent; noexcept (failures are logged).
  void finish() noexcept;

  // Moves the run to `stopping` (see the lifecycle above) and returns once no test is in
  // progress (or the wait was given up). Thread-safe, idempotent; called by the signal watcher.
  void request_stop() noexcept;
  // Whether the run is stopping or finished (begin_test() then runs nothing). Thread-safe.
  bool stop_requested() const noexcept;

  RunReport& report() noexcept;
  const HarnessOptions& options() const noexcept;
  // Name of this run's database (PostgreSQL) or directory (SQLite); empty for memory.
  std::string run_database() const;
  // What --keep kept, one entry per database, ready to use: `psql "URL"` (password redacted)
  // or the SQLite file's path. Each carries a kept marker: no reaper removes it.
  std::vector<std::string> kept() const;
  // The migration-set hash the template is keyed on (empty for memory).
  std::string migration_hash() const;
  // Whether provisioning cloned a cached template (false: built it, or no template).
  bool template_was_cached() const noexcept;

  struct Impl;

 private:
  void run_phases();           // phases 1-4 of start()
  void finish_now() noexcept;  // the teardown itself, once
  std::unique_ptr<Impl> impl_;
};

}  // namespace gamebot::harness
