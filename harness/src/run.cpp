#include "gamebot/harness/run.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gamebot/harness/teardown.hpp"
#include "log.hpp"
#include "test_log.hpp"

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

std::string_view failure_kind(TestOutcome outcome, const TestFailureDetail& failure, bool leaked,
                              bool setup_failed) noexcept {
  if (outcome == TestOutcome::passed) return "";
  if (setup_failed) return "setup";
  if (!failure.exception_type.empty() || !failure.exception_text.empty()) return "exception";
  if (!failure.expression.empty() || !failure.expansion.empty() || !failure.file.empty())
    return "assertion";
  if (leaked) return "leak";
  return "assertion";
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
    command_line_.assign(argv, argv + argc);
    // The report shows the command line: a database URL in it only as the redacted one in use.
    const std::string url = options_.database_url ? options_.database_url->redacted() : "***";
    for (std::size_t i = 0; i < command_line_.size(); ++i) {
      if (command_line_[i] == "--database-url" && i + 1 < command_line_.size()) {
        command_line_[++i] = url;
      } else if (command_line_[i].starts_with("--database-url=")) {
        command_line_[i] = "--database-url=" + url;
      }
    }
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
    environment_->report().set_command_line(command_line_);
    environment_->report().set_options_text(describe(options_));
    detail::attach_test_log();
    environment_->start();
  } catch (const PhaseFailure& failure) {
    // The phase's timer logged the diagnosis in full (report.hpp); saying it again doubled a
    // long failure on the screen. A failure no timer recorded (a stop before the phase), or a
    // log that hides errors, gets it here.
    bool logged = false;
    for (const PhaseRecord& phase :
         environment_ ? environment_->report().phases() : std::vector<PhaseRecord>{})
      logged = logged || (phase.phase == failure.phase() && !phase.ok);
    if (logged && detail::log().should_log(spdlog::level::err)) {
      detail::log().error("no test was run: the {} phase failed ({}); exit status {}",
                          to_string(failure.phase()), gamebot::to_string(failure.fault()),
                          exit_code_of_phase(failure.phase()));
    } else {
      std::fprintf(stderr, "%s\n", failure.what());
    }
    environment_.reset();
    detail::detach_test_log();
    state_ = State::finished;
    exit_code_ = exit_code_of_phase(failure.phase());
    g_active.store(nullptr);
    return false;
  } catch (const Error& error) {
    // configure() or the environment's construction: nothing was provisioned yet.
    say(stderr, "the run could not be set up: " + std::string(error.what()));
    environment_.reset();
    detail::detach_test_log();
    state_ = State::finished;
    exit_code_ = exit_code_of_phase(Phase::preflight);
    g_active.store(nullptr);
    return false;
  }
  state_ = State::running;
  return true;
}

void Run::set_test_selector(
    std::function<std::vector<std::string>(const std::string& test)> select) {
  select_test_ = std::move(select);
}

std::string Run::rerun_command(const std::string& test) const {
  if (!select_test_ || command_line_.empty()) return {};
  std::vector<std::string> command{command_line_.front(), "--backend",
                                   std::string(to_string(options_.backend)), "--isolation",
                                   std::string(to_string(options_.isolation))};
  if (options_.database_url) {
    command.emplace_back("--database-url");
    command.push_back(options_.database_url->redacted());
  }
  if (options_.keep) command.emplace_back("--keep");
  if (options_.connect_deadline != HarnessOptions{}.connect_deadline) {
    command.emplace_back("--connect-deadline");
    command.push_back(fmt::format("{:g}", options_.connect_deadline.count() / 1000.0));
  }
  if (options_.log_level != HarnessOptions{}.log_level) {
    command.emplace_back("--log-level");
    command.emplace_back(to_string(options_.log_level));
  }
  if (options_.max_connections != HarnessOptions{}.max_connections) {
    command.emplace_back("--max-connections");
    command.push_back(std::to_string(options_.max_connections));
  }
  for (std::string& argument : select_test_(test)) command.push_back(std::move(argument));
  return shell_command(command);
}

void Run::record_failure(TestFailureDetail failure, std::string message) {
  // After close_test() a failure is the adapter's report of the leaks, which the record has.
  if (!test_ || closed_ || first_failure_) return;
  first_failure_.emplace(std::move(failure), std::move(message));
}

TestContext& Run::begin_test(std::string name) {
  require(State::running, "Run::begin_test");
  leaks_.clear();
  closed_ = false;
  first_failure_.reset();
  test_started_ = std::chrono::steady_clock::now();
  detail::begin_test_log();
  test_.emplace(environment_->begin_test(std::move(name)));
  test_database_ = test_->database();  // now: close_test() releases it before end_test()
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
  record.duration = std::chrono::steady_clock::now() - test_started_;
  record.database = std::move(test_database_);
  const std::string leaked = close_test();
  std::optional<FaultClass> setup_fault;
  if (test_) {
    record.name = test_->name();
    setup_fault = test_->setup_fault();
  }
  record.outcome = outcome_of(end, setup_fault, !leaks_.empty());
  if (!leaked.empty()) say(stderr, leaked);
  const std::string message = !end.message.empty() ? end.message
                              : first_failure_     ? first_failure_->second
                                                   : leaked;
  switch (record.outcome) {
    case TestOutcome::passed:
      break;
    case TestOutcome::infrastructure_failure:
      record.fault = end.fault ? end.fault : setup_fault;
      record.message = "infrastructure: " + std::string(to_string(*record.fault)) +
                       (message.empty() ? "" : ": " + message);
      break;
    case TestOutcome::assertion_failure:
      record.fault = end.fault;
      record.message = !end.failed ? leaked : message.empty() ? "assertion failed" : message;
      break;
  }
  detail::CapturedLog log = detail::take_test_log();
  if (record.outcome != TestOutcome::passed) {
    if (first_failure_) record.failure = std::move(first_failure_->first);
    record.kind =
        failure_kind(record.outcome, record.failure, !leaks_.empty(), setup_fault.has_value());
    record.log = std::move(log.lines);
    record.log_dropped = log.dropped;
    record.rerun = rerun_command(record.name);
  }
  first_failure_.reset();
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
    detail::detach_test_log();
    exit_code_ = stop_requested() > 0 ? 128 + stop_requested()
                 : framework_failed   ? kExitAssertionFailures
                                      : kExitPassed;
    g_active.store(nullptr);
    return exit_code_;
  }
  // The one summary, in the kit's log format (each leak was named when its test ended).
  environment_->report().log_summary();
  environment_->finish();
  detail::detach_test_log();
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
