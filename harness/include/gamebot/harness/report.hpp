#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/options.hpp"

namespace gamebot::harness {

// The phases of a run, in their strict order.
enum class Phase { preflight, connectivity, provisioning, schema, tests, teardown };
std::string_view to_string(Phase phase) noexcept;

// How a test ended. An infrastructure failure is a test that failed because of
// a retryable fault (connectivity, timeout, pool_exhausted), reported apart
// from assertion failures so a dead server never looks like 300 broken tests.
enum class TestOutcome { passed, assertion_failure, infrastructure_failure };
std::string_view to_string(TestOutcome outcome) noexcept;

struct PhaseRecord {
  Phase phase = Phase::preflight;
  bool ok = true;  // false: the run stopped here
  std::chrono::nanoseconds duration{0};
  std::optional<FaultClass> fault;  // set when !ok
  std::string message;              // detail (ok) or diagnosis (failed)
};

struct TestRecord {
  std::string name;  // the test case name
  TestOutcome outcome = TestOutcome::passed;
  std::chrono::nanoseconds duration{0};
  std::optional<FaultClass> fault;  // for infrastructure failures
  std::string message;              // first failure message; empty when passed
};

// Connection-pool counters, as the pool reports them.
struct PoolCounters {
  std::size_t peak_in_use = 0;  // most connections checked out at once (pool samples included)
  std::uint64_t waits = 0;      // checkouts that had to wait
  std::uint64_t timeouts = 0;   // checkouts that timed out (pool_exhausted)
};

// The run pool's use at one moment (sampled as tests begin and end).
struct PoolSample {
  std::chrono::nanoseconds at{0};  // since the report was created
  std::size_t in_use = 0;          // connections checked out
  std::size_t size = 0;            // connections open
};

// Totals over the recorded tests.
struct TestTotals {
  std::size_t total = 0;
  std::size_t passed = 0;
  std::size_t assertion_failures = 0;
  std::size_t infrastructure_failures = 0;
};

// Telemetry of one run: collects phase durations, pool counters, retries,
// faults by class and per-test results; logs one line per phase through the
// harness logger; writes the JSON run report. All members are thread-safe.
class RunReport {
 public:
  RunReport();

  void set_run_id(std::string run_id);
  void set_backend(Backend backend);
  void set_isolation(Isolation isolation);

  // Records a phase and logs its summary line (info when ok, error when not).
  // A failed phase with a fault also counts in faults_by_class().
  void record_phase(PhaseRecord record);
  // Adds the pool's counters: the peak is the maximum, waits and timeouts add up.
  void record_pool(const PoolCounters& counters);
  // Appends a sample of the pool's use, stamped now (the report keeps at most 10,000; later
  // samples are dropped). Its in_use counts in pool().peak_in_use, dropped or not, so the peak is
  // never below what the timeline shows.
  void record_pool_sample(std::size_t in_use, std::size_t size);
  void add_retries(std::uint64_t count);
  void record_fault(FaultClass fault);
  // Records a test; an infrastructure failure with a fault also counts in
  // faults_by_class(). Logged at debug level.
  void record_test(TestRecord record);

  std::vector<PhaseRecord> phases() const;
  std::vector<TestRecord> tests() const;
  PoolCounters pool() const;
  std::vector<PoolSample> pool_timeline() const;
  std::uint64_t retries() const;
  std::map<FaultClass, std::uint64_t> faults_by_class() const;
  TestTotals totals() const;
  // The `count` slowest tests, slowest first (ties: in recording order).
  std::vector<TestRecord> slowest(std::size_t count = 10) const;
  // "aborted" (a phase failed), "infrastructure_failure", "failed" or "passed",
  // in that precedence.
  std::string verdict() const;

  // Logs the final summary line (counts, verdict, slowest test).
  void log_summary() const;

  // The JSON run report, one object: harness_version, run_id, backend,
  // isolation, started_at (UTC ISO 8601), verdict, phases [{name, ok,
  // duration_ms, fault, message}], pool {peak_in_use, waits, timeouts},
  // retries, faults {class: count}, totals {total, passed,
  // assertion_failures, infrastructure_failures}, tests [{name, outcome,
  // duration_ms, fault, message}], slowest [the 10 slowest tests, same shape],
  // pool_timeline [{at_ms, in_use, size}].
  std::string to_json() const;
  // Writes to_json() to `path` atomically (temporary file + rename). Throws
  // gamebot::Error(configuration) naming the path if it cannot be written.
  void write_json(const std::filesystem::path& path) const;

 private:
  mutable std::mutex mutex_;
  std::string run_id_;
  std::optional<Backend> backend_;
  std::optional<Isolation> isolation_;
  std::chrono::system_clock::time_point started_at_;
  std::vector<PhaseRecord> phases_;
  std::vector<TestRecord> tests_;
  PoolCounters pool_;
  std::chrono::steady_clock::time_point started_steady_;
  std::vector<PoolSample> pool_timeline_;
  std::uint64_t retries_ = 0;
  std::map<FaultClass, std::uint64_t> faults_;
};

// Times a phase (RAII). Call succeed() or fail() to record it; if neither was
// called the destructor records a failure with fault `internal` (the phase
// was left by an exception that was not a gamebot::Error).
class PhaseTimer {
 public:
  PhaseTimer(RunReport& report, Phase phase);
  ~PhaseTimer();
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

  void succeed(std::string detail = {});
  void fail(const Error& error);
  // Time since the timer started.
  std::chrono::nanoseconds elapsed() const;

 private:
  void finish(bool ok, std::optional<FaultClass> fault, std::string message);
  RunReport& report_;
  Phase phase_;
  std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

}  // namespace gamebot::harness
