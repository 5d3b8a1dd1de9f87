#pragma once

// The lifecycle of one harness test binary, written once for every test framework: the Catch2
// main and the GoogleTest adapter parse nothing and decide nothing themselves; they call the Run
// from their framework's hooks.
//
// States, and who moves the Run between them (one Run per process; its owner is the adapter's
// main(), the only caller of the transitions except begin_test()/end_test(), which the
// framework's per-test hooks call on the thread that runs the tests):
//
//   configuring --take_options()--> configured --start()--> running --finish()--> finished
//        |  usage error                 |  usage_error()         |  phase failed
//        +------------------------------+------------------------+--> finished
//   configured --finish()--> finished   (--help, --list-tests: no environment, no test)
//
//   configuring  only take_options(): the harness flags are taken out of argv (a bad value or a
//                missing one is a usage error, exit 2).
//   configured   the framework parses the rest; if it rejects an argument the adapter calls
//                usage_error() (exit 2, with a "did you mean" from harness_flags()). start()
//                runs the phases of database_manager.hpp (a failure: exit 200 + phase).
//   running      begin_test() and end_test() alternate, one test at a time; current_test() is
//                valid between them, database_manager() throughout. A signal only requests a stop
//                (teardown.hpp); the environment is the one owner of the run's resources and
//                acts on it (database_manager.hpp): the test in progress ends, a begin_test()
//                after the stop gets a context that fails "the run is stopping" without touching
//                a torn-down resource, and the watcher tears down and re-raises the signal, so
//                the process ends by it (the shell's 128 + signal) and finish() never returns.
//   finished     exit_code() is final; nothing else moves the Run.
//
// Verdicts: a failed test is an infrastructure failure only when its cause is a fault the harness
// classifies as infrastructure (is_infrastructure_fault(): the connection lost, the server gone,
// a database operation timed out, provisioning); a wait for an event that never came, a wrong
// value, an exception from user code and a leak are assertion failures.
//
// Exit codes (README, "Exit status"), first match wins: 128 + signal after a stop; 2 usage
// error; 200 + phase (200 preflight, 201 connectivity, 202 provisioning, 203 schema) when a phase
// failed before any test; 199 infrastructure failures; 1 assertion failures (any number, never
// the number itself) or the framework reported a failure; 204 the teardown failed; 0 all passed.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/report.hpp"

namespace gamebot::harness {

inline constexpr int kExitPassed = 0;
inline constexpr int kExitAssertionFailures = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInfrastructure = 199;
inline constexpr int kExitPhaseBase = 200;  // + the failed phase's number; teardown is 204

// 200 + the phase's number: preflight 200, connectivity 201, provisioning 202, schema 203,
// teardown 204 (Phase::tests never fails as a phase; it maps to 199).
int exit_code_of_phase(Phase phase) noexcept;

// Whether a fault, when it is what made a test fail, makes the failure infrastructure's.
bool is_infrastructure_fault(FaultClass fault) noexcept;

// How a test ended, as the framework saw it.
struct TestEnd {
  bool failed = false;              // the framework counted a failure
  std::optional<FaultClass> fault;  // of the gamebot::Error the test threw, if it threw one
  std::string message;              // the first failure's text (empty: record_failure()'s)
};

// Why a failed test failed, in a word: the `kind` of its TestRecord (report.hpp). `leaked`: it
// left resources behind; `setup_failed`: its isolation could not be set up.
std::string_view failure_kind(TestOutcome outcome, const TestFailureDetail& failure, bool leaked,
                              bool setup_failed) noexcept;

// The outcome of a test: the framework's view, the fault of its isolation's set-up (a test that
// touched a store that could not be set up failed because of it) and whether it leaked.
TestOutcome outcome_of(const TestEnd& end, std::optional<FaultClass> setup_fault,
                       bool leaked) noexcept;

// The exit-code policy above over a finished run. `stop_signal`: 0 when no stop was requested.
int exit_code_of(const RunReport& report, bool framework_failed, int stop_signal);

class Run {
 public:
  // `framework` names the test framework in messages ("Catch2", "GoogleTest").
  explicit Run(std::string framework);
  ~Run();  // finish() if the owner did not
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // configuring -> configured: takes the harness flags out of argv and resolves them with the
  // environment. Returns the arguments left for the framework (argv[0] first), or nullopt after a
  // usage error (printed; the Run is finished with exit code 2).
  std::optional<std::vector<std::string>> take_options(int argc, const char* const* argv,
                                                       const EnvGetter& env);

  // The framework rejected `argument` (empty when it did not say which); `detail` is its
  // message. Prints one screen with the nearest flag of harness_flags() or `framework_flags`;
  // the Run is finished. Returns 2.
  int usage_error(std::string_view argument, std::string_view detail,
                  std::span<const std::string_view> framework_flags = {});

  // configured -> running: builds the setup (`configure` may be empty), then the environment,
  // and runs its phases. false when one failed (printed; finished, exit 200 + phase).
  bool start(const std::function<void(HarnessSetup&)>& configure);

  // How this framework's command line selects one test (Catch2: its name as a filter), for the
  // rerun command of a failed test's record: the binary, this run's harness flags (the database
  // URL redacted; no --report, so the rerun leaves this report alone), then these arguments.
  void set_test_selector(std::function<std::vector<std::string>(const std::string& test)> select);

  // A safe point; then the test's isolated context (valid until end_test()).
  TestContext& begin_test(std::string name);
  // A failure the framework reported in the current test (a failed check, an exception that
  // escaped it): the first one of a test becomes its record's detail and, when the TestEnd has
  // no message, its message. From the thread that runs the tests; ignored outside a test.
  void record_failure(TestFailureDetail failure, std::string message);
  // Ends the current test's context early (before end_test()) so a framework that can still fail
  // the test (GoogleTest's TearDown) can report the leaks. Returns them as one text, empty when
  // nothing leaked. Idempotent within a test.
  std::string close_test();
  // Records the current test's verdict (closing it first if needed); then a safe point.
  TestOutcome end_test(const TestEnd& end);

  // -> finished (from any state; idempotent): prints the summary, tears the environment down and
  // returns the exit code. `framework_failed`: the framework's own status was not success.
  int finish(bool framework_failed);
  // The exit code (meaningful once finished).
  int exit_code() const noexcept { return exit_code_; }

  // Throw gamebot::Error(internal) outside a running run / a test.
  DatabaseManager& database_manager();
  TestContext& current_test();

  // The Run of this process between take_options() and finish(); nullptr outside.
  static Run* active() noexcept;
  // *active(); throws gamebot::Error(internal) outside.
  static Run& current();

  // The signal that stopped the run (teardown_signal()); 0 when none.
  static int stop_requested() noexcept;

 private:
  enum class State { configuring, configured, running, finished };
  void require(State state, std::string_view operation) const;

  // The rerun command of `test` (see set_test_selector()).
  std::string rerun_command(const std::string& test) const;

  std::string framework_;
  State state_ = State::configuring;
  HarnessOptions options_;
  std::vector<std::string> command_line_;  // as given, the database URL redacted
  std::function<std::vector<std::string>(const std::string&)> select_test_;
  std::chrono::steady_clock::time_point test_started_;
  std::string test_database_;  // the current test's TestContext::database()
  std::optional<std::pair<TestFailureDetail, std::string>> first_failure_;  // of the current test
  std::unique_ptr<DatabaseManager> environment_;
  std::optional<TestContext> test_;
  std::vector<TestLeak> leaks_;  // of the current test, once closed
  bool closed_ = false;          // the current test's context was ended
  int exit_code_ = kExitPassed;
};

}  // namespace gamebot::harness
