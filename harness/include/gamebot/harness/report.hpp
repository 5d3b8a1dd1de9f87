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

// What made a test fail, as its framework reported the first failure (Run fills it the same way
// for every framework; run.hpp). Empty fields: not known (GoogleTest reports no exception type;
// a leak has no location).
struct TestFailureDetail {
  std::string file;              // source file of the failed check ("" unknown)
  int line = 0;                  // its line (0 unknown)
  std::string expression{};      // the check as written: "REQUIRE( a == b )"
  std::string expansion{};       // with the values: "1 == 2"; the framework's text when it has no
                                 // expression (GoogleTest: "Expected equality of these values...")
  std::string exception_type{};  // of the exception that escaped the test ("gamebot::Error")
  std::string exception_text{};  // its what()
};

struct TestRecord {
  std::string name;  // the test case name
  TestOutcome outcome = TestOutcome::passed;
  std::chrono::nanoseconds duration{0};
  std::optional<FaultClass> fault;  // the fault of the failure's gamebot::Error, if it had one
  std::string message;              // first failure message; empty when passed
  // Why it failed: "assertion" (a check failed), "exception" (one escaped the test), "leak" (it
  // passed but left resources behind), "setup" (its isolation could not be set up); "" passed.
  std::string kind{};
  TestFailureDetail failure{};  // of the first failure; empty when passed
  std::string database{};       // where the test's store lived (redacted URL; "" memory/unknown)
  // The last kMaxTestLogLines log lines emitted while the test ran (harness, store and spdlog
  // output, any thread), oldest first; log_dropped says how many earlier lines were left out.
  std::vector<std::string> log{};
  std::size_t log_dropped = 0;
  std::string rerun{};  // a shell command that reruns just this test with this run's flags
};

// `arguments` as one POSIX shell command line (each quoted where the shell would split or expand
// it), for the commands a report shows and a user copies. Pure.
std::string shell_command(const std::vector<std::string>& arguments);

// Lines of a test's log a TestRecord keeps (the last ones: nearest the failure).
inline constexpr std::size_t kMaxTestLogLines = 50;

// Connection-pool counters, as the pool reports them.
struct PoolCounters {
  std::size_t peak_in_use = 0;  // most connections checked out at once (pool samples included)
  std::uint64_t waits = 0;      // checkouts that had to wait
  std::uint64_t timeouts = 0;   // checkouts that timed out (pool_exhausted)
};

// The database connections the harness itself opened (PostgreSQL: admin, lease, pools,
// preparers, listeners; counted where they are opened, repo::ConnectionBudget).
struct ConnectionCounters {
  std::size_t peak_open = 0;  // most open at once, placeholders of the reserve included
  std::size_t cap = 0;        // HarnessOptions::max_connections; 0: not counted (no PostgreSQL)
  std::size_t opened = 0;     // connections set up in all (each costs a server backend's start)
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
  // How the run was started: the command line (program first) and its resolved harness options.
  void set_command_line(std::vector<std::string> arguments);
  void set_options_text(std::string options);

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
  // The harness's connection figures (the provider's, once its connections are closed).
  void record_connections(const ConnectionCounters& counters);
  void record_fault(FaultClass fault);
  // Records a test; an infrastructure failure with a fault also counts in
  // faults_by_class(). Logged at debug level.
  void record_test(TestRecord record);

  std::vector<PhaseRecord> phases() const;
  std::vector<TestRecord> tests() const;
  PoolCounters pool() const;
  ConnectionCounters connections() const;
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
  // isolation, started_at (UTC ISO 8601), command_line [arguments], options (text),
  // verdict, phases [{name, ok, duration_ms, fault, message}],
  // tests_span {start_ms, end_ms} (when tests ran, since the report was created; null before
  // the first), pool {peak_in_use, waits, timeouts}, connections {peak_open, cap},
  // retries, faults {class: count}, totals {total, passed,
  // assertion_failures, infrastructure_failures}, tests [{name, outcome,
  // duration_ms, fault, message, kind, file, line, expression, expansion, exception_type,
  // exception_text, database, log [lines], log_dropped, rerun}], slowest [the 10 slowest
  // tests: {name, outcome, duration_ms, fault, message}], pool_timeline [{at_ms, in_use, size}].
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
  std::vector<std::string> command_line_;
  std::string options_text_;
  std::vector<PhaseRecord> phases_;
  std::vector<TestRecord> tests_;
  std::optional<std::chrono::nanoseconds> tests_start_;  // the first test's start
  std::chrono::nanoseconds tests_end_{0};                // the last test's end
  PoolCounters pool_;
  ConnectionCounters connections_;
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
