// main() for test binaries linking gamebot::harness_catch2_main (see catch2.hpp).

#define CATCH_CONFIG_RUNNER
// Catch2's fatal-signal handler reports SIGINT/SIGTERM as a failed test, ends the run's
// bookkeeping and re-raises into the harness handler, which returns (the cleanup runs on the
// harness's watcher thread): the test thread then continued inside a run Catch had already
// ended, and crashed (SIGSEGV) while the databases were being dropped. The harness handles the
// termination signals itself; crashes (SIGSEGV, SIGABRT) kill the process, and the next run's
// reaper removes what it left.
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <optional>

#include "gamebot/harness/catch2.hpp"
#include "gamebot/harness/teardown.hpp"

namespace gamebot::harness {

__attribute__((weak)) void configure(HarnessSetup&) {}

namespace {

std::unique_ptr<TestEnvironment> g_environment;
std::optional<TestContext> g_test;
std::optional<FaultClass> g_thrown_fault;  // the fault of the last gamebot::Error a test threw
std::size_t g_leaking_tests = 0;

}  // namespace

TestEnvironment& current_environment() {
  if (!g_environment) throw Error(FaultClass::internal, "no gamebot test environment is running");
  return *g_environment;
}

TestContext& current_test() {
  if (!g_test) throw Error(FaultClass::internal, "no gamebot test is running");
  return *g_test;
}

namespace {

class HarnessListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  // main() starts the environment before Catch runs (so a phase failure has its own exit
  // status); an embedding that runs the session itself gets it started here.
  void testRunStarting(const Catch::TestRunInfo&) override {
    if (g_environment && !g_environment->started()) g_environment->start();
  }

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    g_thrown_fault.reset();
    started_ = std::chrono::steady_clock::now();
    if (g_environment) g_test.emplace(g_environment->begin_test(info.name));
  }

  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    TestRecord record;
    record.name = stats.testInfo.name;
    std::vector<TestLeak> leaks;
    std::optional<FaultClass> fault = g_thrown_fault;
    if (g_test) {
      if (!fault && g_test->setup_fault()) fault = g_test->setup_fault();
      leaks = g_test->end();
      g_test.reset();
    }
    // After end(): waiting for (and taking back) what the test leaked is the test's time.
    record.duration = std::chrono::steady_clock::now() - started_;
    const bool failed = stats.totals.assertions.failed > 0;
    if (failed && fault && is_retryable(*fault)) {
      record.outcome = TestOutcome::infrastructure_failure;
      record.fault = fault;
      record.message = "infrastructure: " + std::string(to_string(*fault));
    } else if (failed) {
      record.outcome = TestOutcome::assertion_failure;
      record.message = "assertion failed";
    }
    if (!leaks.empty()) {
      ++g_leaking_tests;
      std::string text = "test '" + record.name + "' leaked:";
      for (const auto& leak : leaks) text += "\n  - " + leak.what;
      std::fprintf(stdout, "gamebot harness: %s\n", text.c_str());
      std::fflush(stdout);
      if (record.outcome == TestOutcome::passed) {
        record.outcome = TestOutcome::assertion_failure;
        record.message = text;
      }
    }
    if (g_environment) g_environment->report().record_test(std::move(record));
  }

 private:
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

}  // namespace gamebot::harness

using GamebotHarnessListener = gamebot::harness::HarnessListener;
CATCH_REGISTER_LISTENER(GamebotHarnessListener)

CATCH_TRANSLATE_EXCEPTION(const gamebot::Error& error) {
  gamebot::harness::g_thrown_fault = error.fault();
  return error.what();
}

int main(int argc, char** argv) {
  using namespace gamebot::harness;
  TeardownScope teardown_scope;
  Catch::Session session;
  OptionInputs inputs;
  std::string backend, url, isolation, report, deadline, level;
  bool keep = false;
  using Catch::clara::Opt;
  auto cli = session.cli() |
             Opt(backend, "memory|sqlite|postgres")["--backend"]("store the tests run on") |
             Opt(url, "URL")["--database-url"]("database URL (default: the harness provides one)") |
             Opt(isolation,
                 "transaction|schema|database|none")["--isolation"]("per-test isolation strategy") |
             Opt(keep)["--keep"]("keep the run's databases for inspection") |
             Opt(report, "FILE")["--report"]("write the JSON run report") |
             Opt(deadline, "SECONDS")["--connect-deadline"]("connectivity deadline") |
             Opt(level, "LEVEL")["--log-level"]("harness log level");
  session.cli(cli);
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (session.configData().showHelp || session.configData().listTests ||
      session.configData().listTestNamesOnly || session.configData().listTags ||
      session.configData().listReporters)
    return session.run();
  auto set = [](std::optional<std::string>& field, const std::string& value) {
    if (!value.empty()) field = value;
  };
  set(inputs.backend, backend);
  set(inputs.database_url, url);
  set(inputs.isolation, isolation);
  set(inputs.report_path, report);
  set(inputs.connect_deadline, deadline);
  set(inputs.log_level, level);
  if (keep) inputs.keep = "true";
  HarnessSetup setup;
  try {
    ResolvedOptions resolved = resolve_options(inputs, process_environment());
    configure(setup);
    g_environment = std::make_unique<TestEnvironment>(resolved.options, std::move(setup));
    g_environment->start();
  } catch (const PhaseFailure& failure) {
    std::fprintf(stderr, "%s\n", failure.what());
    g_environment.reset();
    return 200 + static_cast<int>(failure.phase());
  } catch (const gamebot::Error& error) {
    std::fprintf(stderr, "gamebot harness: %s\n", error.what());
    g_environment.reset();
    return 200;
  }
  int rc = session.run();
  const TestTotals totals = g_environment->report().totals();
  g_environment->report().log_summary();
  std::fprintf(stdout,
               "gamebot harness: %zu tests, %zu passed, %zu assertion failures, %zu "
               "infrastructure failures, %zu leaking\n",
               totals.total, totals.passed, totals.assertion_failures,
               totals.infrastructure_failures, g_leaking_tests);
  std::fflush(stdout);
  g_environment->finish();
  g_environment.reset();
  // After SIGINT/SIGTERM the watcher thread cleans up and then re-raises the signal, so the
  // process ends by it as its parent expects; the tests ending meanwhile must not exit first.
  if (teardown_signal_count() > 0)
    for (;;) ::pause();
  if (totals.infrastructure_failures > 0) return 199;
  if (g_leaking_tests > 0 && rc == 0) rc = 1;
  return rc;
}
