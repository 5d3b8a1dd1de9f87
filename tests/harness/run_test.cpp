// The Run's policies, one test per row of the README's exit-code table (the signal rows are
// tested with the signal handling), and the verdict of a failed test.

#include "gamebot/harness/run.hpp"

#include <catch2/catch.hpp>

using namespace gamebot;
using namespace gamebot::harness;

namespace {

void record_phase(RunReport& report, Phase phase, bool ok) {
  PhaseRecord record;
  record.phase = phase;
  record.ok = ok;
  if (!ok) record.fault = FaultClass::connectivity;
  report.record_phase(std::move(record));
}

// Records that every phase before the tests passed.
void record_start(RunReport& report) {
  for (Phase phase : {Phase::preflight, Phase::connectivity, Phase::provisioning, Phase::schema})
    record_phase(report, phase, true);
}

void record_tests(RunReport& report, TestOutcome outcome, int count) {
  for (int i = 0; i < count; ++i) {
    TestRecord record;
    record.name = "test " + std::to_string(i);
    record.outcome = outcome;
    if (outcome == TestOutcome::infrastructure_failure) record.fault = FaultClass::connectivity;
    report.record_test(std::move(record));
  }
}

}  // namespace

TEST_CASE("exit 0: every test passed", "[harness][run][exit]") {
  RunReport report;
  record_start(report);
  record_tests(report, TestOutcome::passed, 3);
  record_phase(report, Phase::teardown, true);
  CHECK(exit_code_of(report, false, 0) == 0);
}

TEST_CASE("exit 1: assertion failures, whatever their number", "[harness][run][exit]") {
  for (int failures : {1, 199, 201, 256}) {
    RunReport report;
    record_start(report);
    record_tests(report, TestOutcome::passed, 2);
    record_tests(report, TestOutcome::assertion_failure, failures);
    CHECK(exit_code_of(report, true, 0) == 1);
  }
  RunReport framework_only;
  record_start(framework_only);
  CHECK(exit_code_of(framework_only, true, 0) == 1);
}

TEST_CASE("exit 199: infrastructure failures during the tests", "[harness][run][exit]") {
  RunReport report;
  record_start(report);
  record_tests(report, TestOutcome::assertion_failure, 5);
  record_tests(report, TestOutcome::infrastructure_failure, 1);
  CHECK(exit_code_of(report, true, 0) == 199);
}

TEST_CASE("exit 200-203: a phase failed before any test", "[harness][run][exit]") {
  const Phase phases[] = {Phase::preflight, Phase::connectivity, Phase::provisioning,
                          Phase::schema};
  for (int failed = 0; failed < 4; ++failed) {
    RunReport report;
    for (int i = 0; i <= failed; ++i) record_phase(report, phases[i], i < failed);
    record_phase(report, Phase::teardown, true);
    CHECK(exit_code_of(report, false, 0) == 200 + failed);
    CHECK(exit_code_of_phase(phases[failed]) == 200 + failed);
  }
}

TEST_CASE("exit 204: the teardown failed after a run that passed", "[harness][run][exit]") {
  RunReport report;
  record_start(report);
  record_tests(report, TestOutcome::passed, 1);
  record_phase(report, Phase::teardown, false);
  CHECK(exit_code_of(report, false, 0) == 204);
  record_tests(report, TestOutcome::assertion_failure, 1);
  CHECK(exit_code_of(report, true, 0) == 1);
}

TEST_CASE("a failed test is infrastructure's only for a fault classified as infrastructure",
          "[harness][run][verdict]") {
  for (FaultClass fault : {FaultClass::connectivity, FaultClass::timeout,
                           FaultClass::pool_exhausted, FaultClass::provisioning}) {
    CHECK(outcome_of({true, fault, ""}, std::nullopt, false) ==
          TestOutcome::infrastructure_failure);
    // The isolation could not be set up and the test failed touching it.
    CHECK(outcome_of({true, std::nullopt, ""}, fault, false) ==
          TestOutcome::infrastructure_failure);
  }
  for (FaultClass fault : {FaultClass::configuration, FaultClass::serialization,
                           FaultClass::concurrency, FaultClass::integrity, FaultClass::internal})
    CHECK(outcome_of({true, fault, ""}, std::nullopt, false) == TestOutcome::assertion_failure);
  CHECK(outcome_of({true, std::nullopt, "wrong value"}, std::nullopt, false) ==
        TestOutcome::assertion_failure);
  CHECK(outcome_of({false, std::nullopt, ""}, std::nullopt, false) == TestOutcome::passed);
  CHECK(outcome_of({false, std::nullopt, ""}, std::nullopt, true) ==
        TestOutcome::assertion_failure);
}
