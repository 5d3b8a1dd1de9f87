#pragma once

// What the DatabaseManager needs from a backend's databases: one provider per run, driven through
// the phases of database_manager.hpp. Internal to the harness (memory, SQLite, PostgreSQL).
//
// Contract for implementers:
//
// * Phases in order, each at most once, on the manager's owner thread: connect() (phase 2),
//   provision() (phase 3), verify() (phase 4). Each throws gamebot::Error with the fault class of
//   what failed; the manager turns it into that phase's PhaseFailure and calls teardown().
//   Retrying within a phase's deadline is the provider's job (connect() honours
//   HarnessOptions::connect_deadline; authentication is never retried).
// * Everything the provider creates carries a RunMarker (marked_resources.hpp); nothing without
//   this run's marker is ever dropped, truncated or migrated, and the database a --database-url
//   names is only used to connect. Orphans of dead runs are reaped in provision(), before
//   anything of this run is created.
// * begin() gives one test its isolation: it fills the state's store (through an
//   env::TrackingBackend), repo and sandbox as the isolation strategy requires, and `release`
//   for what the test's end must undo. It may be called from several test threads at once
//   (one per test) and throws gamebot::Error for infrastructure faults (the manager retries
//   them and records them in the test's context).
// * cancel_in_flight() runs on the signal watcher while tests may run: it makes their database
//   waits end without touching any object a test thread uses. Thread-safe, noexcept.
// * teardown() runs once, after no test touches the provider any more (or after an abandoned
//   wait): it removes what the run created (with `keep`, marks it kept and lists a ready
//   `psql "URL"` or file path per database as kept instead) and stops what it started.
//   noexcept: what it could not remove (a refused drop, a server gone, a marker that is no
//   longer this run's) is returned as `left`, and the manager fails the teardown phase with it
//   (exit 204); markers let the next run reap what is left.

#include <string>
#include <vector>

#include "gamebot/harness/report.hpp"

namespace gamebot::harness {
struct TestContextState;
}  // namespace gamebot::harness

namespace gamebot::harness::provision {

// What teardown() did not remove.
struct TeardownOutcome {
  std::vector<std::string> kept;  // on request (--keep): names or paths
  std::vector<std::string> left;  // could not be removed: "name: why"
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual void connect(RunReport&) {}
  virtual void provision(RunReport&) {}
  virtual void verify() {}
  virtual void begin(TestContextState& state) = 0;
  virtual TeardownOutcome teardown(bool keep) noexcept = 0;
  // Called on the signal watcher while tests may run: make their database waits end (without
  // touching objects those threads use). Thread-safe; noexcept (failures are logged).
  virtual void cancel_in_flight() noexcept {}
  virtual std::string run_database() const { return {}; }
  virtual std::string migration_hash() const { return {}; }
  virtual bool template_cached() const { return false; }
  // Whether verify() trusted a template whose clone passed the same check before (its marker
  // records the check's fingerprint) instead of checking this run's database again.
  virtual bool schema_verified_on_template() const { return false; }
};

}  // namespace gamebot::harness::provision
