#include "gamebot/harness/run.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gamebot/harness/teardown.hpp"
#include "log.hpp"

namespace gamebot::harness {

namespace {

std::atomic<Run*> g_active{nullptr};

void say(std::FILE* stream, const std::string& text) {
  std::fprintf(stream, "gamebot harness: %s\n", text.c_str());
  std::fflush(stream);
}

}  // namespace

int exit_code_of_phase(Phase phase) noexcept {
  switch (phase) {
    case Phase::preflight:
      return kExitPhaseBase;
    case Phase::connectivity:
      return kExitPhaseBase + 1;
    case Phase::provisioning:
      return kExitPhaseBase + 2;
    case Phase::schema:
      return kExitPhaseBase + 3;
    case Phase::tests:
      return kExitInfrastructure;
    case Phase::teardown:
      return kExitPhaseBase + 4;
  }
  return kExitPhaseBase;
}

bool is_infrastructure_fault(FaultClass fault) noexcept {
  return fault == FaultClass::connectivity || fault == FaultClass::timeout ||
         fault == FaultClass::pool_exhausted || fault == FaultClass::provisioning;
}

TestOutcome outcome_of(const TestEnd& end, std::optional<FaultClass> setup_fault,
                       bool leaked) noexcept {
  if (!end.failed) return leaked ? TestOutcome::assertion_failure : TestOutcome::passed;
  const std::optional<FaultClass> cause = end.fault ? end.fault : setup_fault;
  if (cause && is_infrastructure_fault(*cause)) return TestOutcome::infrastructure_failure;
  return TestOutcome::assertion_failure;
}

int exit_code_of(const RunReport& report, bool framework_failed, int stop_signal) {
  if (stop_signal > 0) return 128 + stop_signal;
  const std::vector<PhaseRecord> phases = report.phases();
  bool teardown_failed = false;
  for (const PhaseRecord& phase : phases) {
    if (phase.ok) continue;
    if (phase.phase == Phase::teardown) {
      teardown_failed = true;
    } else if (phase.phase != Phase::tests) {
      return exit_code_of_phase(phase.phase);
    }
  }
  const TestTotals totals = report.totals();
  if (totals.infrastructure_failures > 0) return kExitInfrastructure;
  if (totals.assertion_failures > 0 || framework_failed) return kExitAssertionFailures;
  if (teardown_failed) return exit_code_of_phase(Phase::teardown);
  return kExitPassed;
}

Run::Run(std::string framework) : framework_(std::move(framework)) {}

Run::~Run() {
  finish(false);
}

Run* Run::active() noexcept {
  return g_active.load();
}

Run& Run::current() {
  Run* run = g_active.load();
  if (run == nullptr) throw Error(FaultClass::internal, "no gamebot test environment is running");
  return *run;
}

int Run::stop_requested() noexcept {
  return teardown_signal();
}

void Run::require(State state, std::string_view operation) const {
  if (state_ != state)
    throw Error(FaultClass::internal, "gamebot harness: " + std::string(operation) +
                                          " called in the wrong state of the run");
}

std::optional<std::vector<std::string>> Run::take_options(int argc, const char* const* argv,
                                                          const EnvGetter& env) {
  require(State::configuring, "Run::take_options");
  g_active.store(this);
  try {
    ExtractedOptions extracted = extract_options(argc, argv);
    ResolvedOptions resolved = resolve_options(extracted.inputs, env);
    // In the kit's log format: a setting the user gave was ignored, which is worth a warning.
    for (const std::string& note : resolved.notes) detail::log().warn("{}", note);
    options_ = std::move(resolved.options);
    state_ = State::configured;
    return std::move(extracted.remaining);
  } catch (const Error& error) {
    say(stderr, std::string(error.message()) + "\n(run with --help for the options)");
    state_ = State::finished;
    exit_code_ = kExitUsage;
    g_active.store(nullptr);
    return std::nullopt;
  }
}

int Run::usage_error(std::string_view argument, std::string_view detail,
                     std::span<const std::string_view> framework_flags) {
  std::string text;
  if (!argument.empty() && argument.starts_with("-")) {
    text = "unknown option '" + std::string(argument) + "'";
    if (auto nearest = nearest_flag(argument, framework_flags))
      text += " (did you mean '" + *nearest + "'?)";
  } else if (!argument.empty()) {
    text = "unexpected argument '" + std::string(argument) + "'";
  } else {
    text = "the command line was rejected";
  }
  if (!detail.empty()) text += "; " + framework_ + " says: " + std::string(detail);
  say(stderr, text + "\n(run with --help for the options)");
  environment_.reset();
  state_ = State::finished;
  exit_code_ = kExitUsage;
  g_active.store(nullptr);
  return exit_code_;
}

bool Run::start(const std::function<void(HarnessSetup&)>& configure) {
  require(State::configured, "Run::start");
  try {
    HarnessSetup setup;
    if (configure) configure(setup);
    environment_ = std::make_unique<DatabaseManager>(options_, std::move(setup));
    environment_->start();
  } catch (const PhaseFailure& failure) {
    std::fprintf(stderr, "%s\n", failure.what());
    environment_.reset();
    state_ = State::finished;
    exit_code_ = exit_code_of_phase(failure.phase());
    g_active.store(nullptr);
    return false;
  } catch (const Error& error) {
    // configure() or the environment's construction: nothing was provisioned yet.
    say(stderr, "the run could not be set up: " + std::string(error.what()));
    environment_.reset();
    state_ = State::finished;
    exit_code_ = exit_code_of_phase(Phase::preflight);
    g_active.store(nullptr);
    return false;
  }
  state_ = State::running;
  return true;
}

TestContext& Run::begin_test(std::string name) {
  require(State::running, "Run::begin_test");
  leaks_.clear();
  closed_ = false;
  test_.emplace(environment_->begin_test(std::move(name)));
  return *test_;
}

std::string Run::close_test() {
  if (!test_ || closed_) return {};
  closed_ = true;
  leaks_ = test_->end();
  if (leaks_.empty()) return {};
  std::string text = "test '" + test_->name() + "' leaked:";
  for (const TestLeak& leak : leaks_) text += "\n  - " + leak.what;
  return text;
}

TestOutcome Run::end_test(const TestEnd& end) {
  require(State::running, "Run::end_test");
  TestRecord record;
  const std::string leaked = close_test();
  std::optional<FaultClass> setup_fault;
  if (test_) {
    record.name = test_->name();
    setup_fault = test_->setup_fault();
  }
  record.outcome = outcome_of(end, setup_fault, !leaks_.empty());
  if (!leaked.empty()) say(stderr, leaked);
  switch (record.outcome) {
    case TestOutcome::passed:
      break;
    case TestOutcome::infrastructure_failure:
      record.fault = end.fault ? end.fault : setup_fault;
      record.message = "infrastructure: " + std::string(to_string(*record.fault)) +
                       (end.message.empty() ? "" : ": " + end.message);
      break;
    case TestOutcome::assertion_failure:
      record.message = !end.failed           ? leaked
                       : end.message.empty() ? "assertion failed"
                                             : end.message;
      break;
  }
  environment_->report().record_test(std::move(record));
  test_.reset();
  leaks_.clear();
  return environment_->report().tests().back().outcome;
}

int Run::finish(bool framework_failed) {
  if (state_ == State::finished) return exit_code_;
  state_ = State::finished;
  if (test_) {
    // A stop inside a test (or a framework that ended without end_test()): its context is
    // released before the environment it belongs to.
    test_->end();
    test_.reset();
  }
  if (!environment_) {
    exit_code_ = stop_requested() > 0 ? 128 + stop_requested()
                 : framework_failed   ? kExitAssertionFailures
                                      : kExitPassed;
    g_active.store(nullptr);
    return exit_code_;
  }
  // The one summary, in the kit's log format (each leak was named when its test ended).
  environment_->report().log_summary();
  environment_->finish();
  exit_code_ = exit_code_of(environment_->report(), framework_failed, stop_requested());
  environment_.reset();
  g_active.store(nullptr);
  // After a signal the environment's owner (database_manager.hpp: the watcher thread) tears down
  // and then re-raises the signal, so the process ends by it as its parent expects (the shell's
  // 128 + signal); the run must not exit first.
  if (teardown_signal_count() > 0)
    for (;;) ::pause();
  return exit_code_;
}

DatabaseManager& Run::database_manager() {
  if (!environment_) throw Error(FaultClass::internal, "no gamebot test environment is running");
  return *environment_;
}

TestContext& Run::current_test() {
  if (!test_) throw Error(FaultClass::internal, "no gamebot test is running");
  return *test_;
}

}  // namespace gamebot::harness
