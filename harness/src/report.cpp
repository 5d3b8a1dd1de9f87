#include "gamebot/harness/report.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <numeric>
#include <random>

#include "gamebot/harness/version.hpp"
#include "json.hpp"
#include "log.hpp"

namespace gamebot::harness {
namespace {

double milliseconds_of(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string human_duration(std::chrono::nanoseconds d) {
  double ms = milliseconds_of(d);
  if (ms >= 1000.0) return fmt::format("{:.2f} s", ms / 1000.0);
  return fmt::format("{:.1f} ms", ms);
}

std::string iso8601(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

void append_key(std::string& out, std::string_view key) {
  detail::append_json_string(out, key);
  out += ": ";
}

void append_optional_fault(std::string& out, const std::optional<FaultClass>& fault) {
  if (fault) {
    detail::append_json_string(out, to_string(*fault));
  } else {
    out += "null";
  }
}

void append_string_field(std::string& out, std::string_view key, std::string_view value) {
  out += ", ";
  append_key(out, key);
  detail::append_json_string(out, value);
}

// A test as the `slowest` list shows it; `details` adds why it failed, its log and its rerun.
void append_test(std::string& out, const TestRecord& test, bool details) {
  out += "{";
  append_key(out, "name");
  detail::append_json_string(out, test.name);
  out += ", ";
  append_key(out, "outcome");
  detail::append_json_string(out, to_string(test.outcome));
  out += ", ";
  append_key(out, "duration_ms");
  detail::append_json_number(out, milliseconds_of(test.duration));
  out += ", ";
  append_key(out, "fault");
  append_optional_fault(out, test.fault);
  out += ", ";
  append_key(out, "message");
  detail::append_json_string(out, test.message);
  if (details) {
    append_string_field(out, "kind", test.kind);
    append_string_field(out, "file", test.failure.file);
    out += ", ";
    append_key(out, "line");
    out += fmt::format("{}", test.failure.line);
    append_string_field(out, "expression", test.failure.expression);
    append_string_field(out, "expansion", test.failure.expansion);
    append_string_field(out, "exception_type", test.failure.exception_type);
    append_string_field(out, "exception_text", test.failure.exception_text);
    append_string_field(out, "database", test.database);
    out += ", ";
    append_key(out, "log");
    out += "[";
    for (std::size_t i = 0; i < test.log.size(); ++i) {
      if (i > 0) out += ", ";
      detail::append_json_string(out, test.log[i]);
    }
    out += "], ";
    append_key(out, "log_dropped");
    out += fmt::format("{}", test.log_dropped);
    append_string_field(out, "rerun", test.rerun);
  }
  out += "}";
}

std::vector<TestRecord> slowest_of(const std::vector<TestRecord>& tests, std::size_t count) {
  std::vector<TestRecord> sorted = tests;
  std::stable_sort(sorted.begin(), sorted.end(), [](const TestRecord& a, const TestRecord& b) {
    return a.duration > b.duration;
  });
  if (sorted.size() > count) sorted.resize(count);
  return sorted;
}

TestTotals totals_of(const std::vector<TestRecord>& tests) {
  TestTotals totals;
  totals.total = tests.size();
  for (const TestRecord& test : tests) {
    switch (test.outcome) {
      case TestOutcome::passed:
        ++totals.passed;
        break;
      case TestOutcome::assertion_failure:
        ++totals.assertion_failures;
        break;
      case TestOutcome::infrastructure_failure:
        ++totals.infrastructure_failures;
        break;
    }
  }
  return totals;
}

std::string verdict_of(const std::vector<PhaseRecord>& phases, const TestTotals& totals) {
  if (std::any_of(phases.begin(), phases.end(), [](const PhaseRecord& p) { return !p.ok; })) {
    return "aborted";
  }
  if (totals.infrastructure_failures > 0) return "infrastructure_failure";
  if (totals.assertion_failures > 0) return "failed";
  return "passed";
}

}  // namespace

std::string shell_command(const std::vector<std::string>& arguments) {
  constexpr std::string_view kPlain =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
  std::string command;
  for (const std::string& argument : arguments) {
    if (!command.empty()) command += ' ';
    if (!argument.empty() && argument.find_first_not_of(kPlain) == std::string::npos) {
      command += argument;
      continue;
    }
    command += '\'';
    for (char c : argument) command += c == '\'' ? std::string("'\\''") : std::string(1, c);
    command += '\'';
  }
  return command;
}

std::string_view to_string(Phase phase) noexcept {
  switch (phase) {
    case Phase::preflight:
      return "preflight";
    case Phase::connectivity:
      return "connectivity";
    case Phase::provisioning:
      return "provisioning";
    case Phase::schema:
      return "schema";
    case Phase::tests:
      return "tests";
    case Phase::teardown:
      return "teardown";
  }
  return "preflight";
}

std::string_view to_string(TestOutcome outcome) noexcept {
  switch (outcome) {
    case TestOutcome::passed:
      return "passed";
    case TestOutcome::assertion_failure:
      return "assertion_failure";
    case TestOutcome::infrastructure_failure:
      return "infrastructure_failure";
  }
  return "passed";
}

RunReport::RunReport()
    : started_at_(std::chrono::system_clock::now()),
      started_steady_(std::chrono::steady_clock::now()) {}

void RunReport::set_run_id(std::string run_id) {
  std::lock_guard lock(mutex_);
  run_id_ = std::move(run_id);
}

void RunReport::set_backend(Backend backend) {
  std::lock_guard lock(mutex_);
  backend_ = backend;
}

void RunReport::set_isolation(Isolation isolation) {
  std::lock_guard lock(mutex_);
  isolation_ = isolation;
}

void RunReport::set_command_line(std::vector<std::string> arguments) {
  std::lock_guard lock(mutex_);
  command_line_ = std::move(arguments);
}

void RunReport::set_options_text(std::string options) {
  std::lock_guard lock(mutex_);
  options_text_ = std::move(options);
}

void RunReport::record_phase(PhaseRecord record) {
  if (record.ok) {
    detail::log().info("{}: ok in {}{}{}", to_string(record.phase), human_duration(record.duration),
                       record.message.empty() ? "" : " — ", record.message);
  } else {
    detail::log().error("{}: FAILED after {} [{}]: {}", to_string(record.phase),
                        human_duration(record.duration),
                        record.fault ? to_string(*record.fault) : "unknown", record.message);
  }
  std::lock_guard lock(mutex_);
  if (!record.ok && record.fault) ++faults_[*record.fault];
  phases_.push_back(std::move(record));
}

void RunReport::record_pool(const PoolCounters& counters) {
  std::lock_guard lock(mutex_);
  pool_.peak_in_use = std::max(pool_.peak_in_use, counters.peak_in_use);
  pool_.waits += counters.waits;
  pool_.timeouts += counters.timeouts;
}

void RunReport::record_connections(const ConnectionCounters& counters) {
  std::lock_guard lock(mutex_);
  connections_ = counters;
}

void RunReport::record_pool_sample(std::size_t in_use, std::size_t size) {
  constexpr std::size_t kMaxSamples = 10'000;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  pool_.peak_in_use = std::max(pool_.peak_in_use, in_use);
  if (pool_timeline_.size() >= kMaxSamples) return;
  pool_timeline_.push_back(PoolSample{now - started_steady_, in_use, size});
}

std::vector<PoolSample> RunReport::pool_timeline() const {
  std::lock_guard lock(mutex_);
  return pool_timeline_;
}

void RunReport::add_retries(std::uint64_t count) {
  std::lock_guard lock(mutex_);
  retries_ += count;
}

void RunReport::record_fault(FaultClass fault) {
  std::lock_guard lock(mutex_);
  ++faults_[fault];
}

void RunReport::record_test(TestRecord record) {
  detail::log().debug("test {}: {} in {}{}{}", record.name, to_string(record.outcome),
                      human_duration(record.duration), record.message.empty() ? "" : ": ",
                      record.message);
  const auto now = std::chrono::steady_clock::now() - started_steady_;
  std::lock_guard lock(mutex_);
  // Never before the report began (a test's clock and the report's need not start together).
  if (!tests_start_) tests_start_ = std::max(now - record.duration, std::chrono::nanoseconds(0));
  tests_end_ = now;
  if (record.outcome == TestOutcome::infrastructure_failure && record.fault) {
    ++faults_[*record.fault];
  }
  tests_.push_back(std::move(record));
}

std::vector<PhaseRecord> RunReport::phases() const {
  std::lock_guard lock(mutex_);
  return phases_;
}

std::vector<TestRecord> RunReport::tests() const {
  std::lock_guard lock(mutex_);
  return tests_;
}

PoolCounters RunReport::pool() const {
  std::lock_guard lock(mutex_);
  return pool_;
}

ConnectionCounters RunReport::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

std::uint64_t RunReport::retries() const {
  std::lock_guard lock(mutex_);
  return retries_;
}

std::map<FaultClass, std::uint64_t> RunReport::faults_by_class() const {
  std::lock_guard lock(mutex_);
  return faults_;
}

TestTotals RunReport::totals() const {
  std::lock_guard lock(mutex_);
  return totals_of(tests_);
}

std::vector<TestRecord> RunReport::slowest(std::size_t count) const {
  std::lock_guard lock(mutex_);
  return slowest_of(tests_, count);
}

std::string RunReport::verdict() const {
  std::lock_guard lock(mutex_);
  return verdict_of(phases_, totals_of(tests_));
}

void RunReport::log_summary() const {
  std::lock_guard lock(mutex_);
  TestTotals totals = totals_of(tests_);
  std::string slowest;
  if (auto top = slowest_of(tests_, 1); !top.empty()) {
    slowest =
        fmt::format("; slowest: {} ({})", top.front().name, human_duration(top.front().duration));
  }
  std::string connections;
  if (connections_.cap > 0) {
    connections = fmt::format("; connections: peak {} open at once, {} opened (cap {})",
                              connections_.peak_open, connections_.opened, connections_.cap);
  }
  detail::log().info(
      "run {}: {} tests, {} passed, {} assertion failure(s), {} infrastructure failure(s), {} "
      "retr{}{}{}",
      verdict_of(phases_, totals), totals.total, totals.passed, totals.assertion_failures,
      totals.infrastructure_failures, retries_, retries_ == 1 ? "y" : "ies", connections, slowest);
}

std::string RunReport::to_json() const {
  std::lock_guard lock(mutex_);
  const TestTotals totals = totals_of(tests_);
  std::string out = "{\n  ";
  append_key(out, "harness_version");
  detail::append_json_string(out, harness_version());
  out += ",\n  ";
  append_key(out, "run_id");
  detail::append_json_string(out, run_id_);
  out += ",\n  ";
  append_key(out, "backend");
  if (backend_) {
    detail::append_json_string(out, to_string(*backend_));
  } else {
    out += "null";
  }
  out += ",\n  ";
  append_key(out, "isolation");
  if (isolation_) {
    detail::append_json_string(out, to_string(*isolation_));
  } else {
    out += "null";
  }
  out += ",\n  ";
  append_key(out, "started_at");
  detail::append_json_string(out, iso8601(started_at_));
  out += ",\n  ";
  append_key(out, "command_line");
  out += "[";
  for (std::size_t i = 0; i < command_line_.size(); ++i) {
    if (i > 0) out += ", ";
    detail::append_json_string(out, command_line_[i]);
  }
  out += "],\n  ";
  append_key(out, "options");
  detail::append_json_string(out, options_text_);
  out += ",\n  ";
  append_key(out, "verdict");
  detail::append_json_string(out, verdict_of(phases_, totals));
  out += ",\n  ";
  append_key(out, "tests_span");
  if (tests_start_) {
    out += fmt::format(R"({{"start_ms": {:.3f}, "end_ms": {:.3f}}})",
                       milliseconds_of(*tests_start_), milliseconds_of(tests_end_));
  } else {
    out += "null";
  }
  out += ",\n  ";
  append_key(out, "phases");
  out += "[";
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    const PhaseRecord& phase = phases_[i];
    out += i == 0 ? "\n    {" : ",\n    {";
    append_key(out, "name");
    detail::append_json_string(out, to_string(phase.phase));
    out += ", ";
    append_key(out, "ok");
    out += phase.ok ? "true" : "false";
    out += ", ";
    append_key(out, "duration_ms");
    detail::append_json_number(out, milliseconds_of(phase.duration));
    out += ", ";
    append_key(out, "fault");
    append_optional_fault(out, phase.fault);
    out += ", ";
    append_key(out, "message");
    detail::append_json_string(out, phase.message);
    out += "}";
  }
  out += phases_.empty() ? "]" : "\n  ]";
  out += ",\n  ";
  append_key(out, "pool");
  out += fmt::format(R"({{"peak_in_use": {}, "waits": {}, "timeouts": {}}})", pool_.peak_in_use,
                     pool_.waits, pool_.timeouts);
  out += ",\n  ";
  append_key(out, "connections");
  out += fmt::format(R"({{"peak_open": {}, "cap": {}, "opened": {}}})", connections_.peak_open,
                     connections_.cap, connections_.opened);
  out += ",\n  ";
  append_key(out, "retries");
  out += fmt::format("{}", retries_);
  out += ",\n  ";
  append_key(out, "faults");
  out += "{";
  bool first = true;
  for (const auto& [fault, count] : faults_) {
    if (!first) out += ", ";
    first = false;
    append_key(out, to_string(fault));
    out += fmt::format("{}", count);
  }
  out += "}";
  out += ",\n  ";
  append_key(out, "totals");
  out += fmt::format(
      R"({{"total": {}, "passed": {}, "assertion_failures": {}, "infrastructure_failures": {}}})",
      totals.total, totals.passed, totals.assertion_failures, totals.infrastructure_failures);
  auto append_tests = [&](std::string_view key, const std::vector<TestRecord>& tests,
                          bool details) {
    out += ",\n  ";
    append_key(out, key);
    out += "[";
    for (std::size_t i = 0; i < tests.size(); ++i) {
      out += i == 0 ? "\n    " : ",\n    ";
      append_test(out, tests[i], details);
    }
    out += tests.empty() ? "]" : "\n  ]";
  };
  append_tests("tests", tests_, true);
  append_tests("slowest", slowest_of(tests_, 10), false);
  out += ",\n  ";
  append_key(out, "pool_timeline");
  out += "[";
  for (std::size_t i = 0; i < pool_timeline_.size(); ++i) {
    const PoolSample& sample = pool_timeline_[i];
    out += i == 0 ? "" : ", ";
    out += fmt::format(R"({{"at_ms": {:.3f}, "in_use": {}, "size": {}}})",
                       std::chrono::duration<double, std::milli>(sample.at).count(), sample.in_use,
                       sample.size);
  }
  out += "]";
  out += "\n}\n";
  return out;
}

void RunReport::write_json(const std::filesystem::path& path) const {
  const std::string json = to_json();
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::filesystem::path temporary =
      path.string() + fmt::format(".tmp-{}-{:x}", static_cast<long>(::getpid()), engine());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << json;
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error(FaultClass::configuration,
                  fmt::format("--report: cannot write the run report to {}", path.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(FaultClass::configuration,
                fmt::format("--report: cannot write the run report to {}: {}", path.string(),
                            error.message()));
  }
}

PhaseTimer::PhaseTimer(RunReport& report, Phase phase)
    : report_(report), phase_(phase), start_(std::chrono::steady_clock::now()) {}

PhaseTimer::~PhaseTimer() {
  if (done_) return;
  try {
    finish(false, FaultClass::internal, "the phase ended without a result (unexpected exception)");
  } catch (...) {
    // Recording is best effort while unwinding; the exception itself carries the diagnosis.
  }
}

void PhaseTimer::succeed(std::string detail) {
  finish(true, std::nullopt, std::move(detail));
}

void PhaseTimer::fail(const Error& error) {
  finish(false, error.fault(), error.message());
}

std::chrono::nanoseconds PhaseTimer::elapsed() const {
  return std::chrono::steady_clock::now() - start_;
}

void PhaseTimer::finish(bool ok, std::optional<FaultClass> fault, std::string message) {
  if (done_) return;
  done_ = true;
  report_.record_phase(PhaseRecord{phase_, ok, elapsed(), fault, std::move(message)});
}

}  // namespace gamebot::harness
