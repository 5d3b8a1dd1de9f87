// GoogleTest adapter (see gtest.hpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gamebot/harness/gtest.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/teardown.hpp"

namespace gamebot::harness::gtest {

namespace {

TestEnvironment* g_environment = nullptr;
std::size_t g_leaking_tests = 0;

// Records each test in the run report, infrastructure failures apart from assertion failures.
class ReportListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override {
    fault_.reset();
    started_ = std::chrono::steady_clock::now();
  }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed() || fault_) return;
    fault_ = fault_of_failure_message(result.message());
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (g_environment == nullptr) return;
    TestRecord record;
    record.name = std::string(info.test_suite_name()) + "." + info.name();
    record.duration = std::chrono::steady_clock::now() - started_;
    if (info.result()->Failed()) {
      if (fault_ && is_retryable(*fault_)) {
        record.outcome = TestOutcome::infrastructure_failure;
        record.fault = fault_;
        record.message = "infrastructure: " + std::string(to_string(*fault_));
      } else {
        record.outcome = TestOutcome::assertion_failure;
        record.message = "assertion failed";
      }
    }
    g_environment->report().record_test(std::move(record));
  }

 private:
  std::optional<FaultClass> fault_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

std::optional<FaultClass> fault_of_failure_message(std::string_view message) {
  constexpr std::string_view kMarker = "C++ exception with description \"";
  const std::size_t at = message.find(kMarker);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view what = message.substr(at + kMarker.size());
  for (FaultClass fault :
       {FaultClass::configuration, FaultClass::connectivity, FaultClass::authentication,
        FaultClass::provisioning, FaultClass::schema, FaultClass::serialization,
        FaultClass::concurrency, FaultClass::pool_exhausted, FaultClass::timeout,
        FaultClass::integrity, FaultClass::internal}) {
    const std::string_view name = to_string(fault);
    // gamebot::Error::what() is "<class>: <message>" or "<class> [<code>]: <message>".
    if (what.size() > name.size() && what.substr(0, name.size()) == name &&
        (what[name.size()] == ':' || what.substr(name.size(), 2) == " [")) {
      return fault;
    }
  }
  return std::nullopt;
}

TestEnvironment& current_environment() {
  if (g_environment == nullptr)
    throw Error(FaultClass::internal, "no gamebot test environment is running");
  return *g_environment;
}

void StoreTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  context_.emplace(
      current_environment().begin_test(std::string(info->test_suite_name()) + "." + info->name()));
  if (context_->setup_fault()) {
    // Thrown, so the report listener classifies it like a fault from the test body.
    context_->store();
  }
}

void StoreTest::TearDown() {
  if (!context_) return;
  std::vector<TestLeak> leaks = context_->end();
  context_.reset();
  if (leaks.empty()) return;
  ++g_leaking_tests;
  std::string text = "test leaked:";
  for (const auto& leak : leaks) text += "\n  - " + leak.what;
  ADD_FAILURE() << text;
}

eventstore::EventStore& StoreTest::store() {
  return context().store();
}

const repo::Repo& StoreTest::repo() {
  return context().repo();
}

TestContext& StoreTest::context() {
  if (!context_) throw Error(FaultClass::internal, "StoreTest used outside SetUp/TearDown");
  return *context_;
}

int run_all_tests(int argc, char** argv, const std::function<void(HarnessSetup&)>& configure) {
  TeardownScope teardown_scope;
  ParsedOptions parsed;
  try {
    parsed = parse_options(argc, argv, process_environment());
  } catch (const Error& error) {
    std::fprintf(stderr, "gamebot harness: %s\n", error.what());
    return 2;
  }
  std::vector<char*> remaining;
  for (std::string& argument : parsed.remaining) remaining.push_back(argument.data());
  int remaining_count = static_cast<int>(remaining.size());
  remaining.push_back(nullptr);
  ::testing::InitGoogleTest(&remaining_count, remaining.data());
  if (::testing::GTEST_FLAG(list_tests)) return RUN_ALL_TESTS();

  std::unique_ptr<TestEnvironment> environment;
  try {
    HarnessSetup setup;
    if (configure) configure(setup);
    environment = std::make_unique<TestEnvironment>(parsed.options, std::move(setup));
    environment->start();
  } catch (const PhaseFailure& failure) {
    std::fprintf(stderr, "%s\n", failure.what());
    return 200 + static_cast<int>(failure.phase());
  } catch (const Error& error) {
    std::fprintf(stderr, "gamebot harness: %s\n", error.what());
    return 200;
  }
  g_environment = environment.get();
  ::testing::UnitTest::GetInstance()->listeners().Append(new ReportListener);
  const int gtest_status = RUN_ALL_TESTS();
  const TestTotals totals = environment->report().totals();
  environment->report().log_summary();
  std::fprintf(stdout,
               "gamebot harness: %zu tests, %zu passed, %zu assertion failures, %zu "
               "infrastructure failures, %zu leaking\n",
               totals.total, totals.passed, totals.assertion_failures,
               totals.infrastructure_failures, g_leaking_tests);
  std::fflush(stdout);
  environment->finish();
  g_environment = nullptr;
  environment.reset();
  // After SIGINT/SIGTERM the teardown thread cleans up, then re-raises the signal.
  if (teardown_signal_count() > 0)
    for (;;) ::pause();
  if (totals.infrastructure_failures > 0) return 199;
  return gtest_status == 0 ? 0 : 1;
}

}  // namespace gamebot::harness::gtest
