// GoogleTest adapter (see gtest.hpp): GoogleTest's hooks over the harness Run (run.hpp), which
// owns the lifecycle, the verdicts and the exit code.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gamebot/harness/gtest.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/run.hpp"
#include "gamebot/harness/teardown.hpp"

namespace gamebot::harness::gtest {

namespace {

std::string full_name(const ::testing::TestInfo& info) {
  return std::string(info.test_suite_name()) + "." + info.name();
}

// Begins and ends each test in the Run, with the fault of a gamebot::Error the test threw.
class RunListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo& info) override {
    end_ = TestEnd{};
    Run::current().begin_test(full_name(info));
  }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    if (!end_.fault) end_.fault = fault_of_failure_message(result.message());
    TestFailureDetail failure;
    failure.file = result.file_name() != nullptr ? result.file_name() : "";
    failure.line = std::max(result.line_number(), 0);
    // GoogleTest hands over its text, not the expression: it is the expansion, or the exception's.
    if (auto what = exception_of_failure_message(result.message())) {
      failure.exception_text = std::move(*what);
    } else {
      failure.expansion = result.message();
    }
    Run::current().record_failure(std::move(failure), result.message());
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    end_.failed = info.result()->Failed();
    Run::current().end_test(end_);
  }

 private:
  TestEnd end_;
};

// GoogleTest's own flags, for the "did you mean" of an unknown one.
constexpr std::string_view kGtestFlags[] = {"--gtest_filter",
                                            "--gtest_list_tests",
                                            "--gtest_repeat",
                                            "--gtest_shuffle",
                                            "--gtest_random_seed",
                                            "--gtest_output",
                                            "--gtest_brief",
                                            "--gtest_color",
                                            "--gtest_break_on_failure",
                                            "--gtest_fail_fast",
                                            "--gtest_also_run_disabled_tests",
                                            "--gtest_print_time",
                                            "--help"};

// Whether --gtest_output sends the XML or JSON report to stdout: then stdout is the report's
// alone (GoogleTest's console printer writes there too, which would make it unparsable).
bool report_on_stdout() {
  const std::string output = ::testing::GTEST_FLAG(output);
  const std::size_t colon = output.find(':');
  if (colon == std::string::npos) return false;
  const std::string path = output.substr(colon + 1);
  return path == "/dev/stdout" || path == "/dev/fd/1" || path == "/proc/self/fd/1";
}

bool asks_for_help(const std::vector<std::string>& arguments) {
  for (const std::string& argument : arguments)
    if (argument == "--help" || argument == "-h" || argument == "-?" || argument == "/?")
      return true;
  return false;
}

}  // namespace

std::optional<std::string> exception_of_failure_message(std::string_view message) {
  constexpr std::string_view kMarker = "C++ exception with description \"";
  constexpr std::string_view kEnd = "\" thrown in ";
  const std::size_t at = message.find(kMarker);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view what = message.substr(at + kMarker.size());
  return std::string(what.substr(0, what.rfind(kEnd)));
}

std::optional<FaultClass> fault_of_failure_message(std::string_view message) {
  const std::optional<std::string> exception = exception_of_failure_message(message);
  if (!exception) return std::nullopt;
  const std::string_view what = *exception;
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

DatabaseManager& current_database_manager() {
  return Run::current().database_manager();
}

void StoreTest::SetUp() {
  // Thrown, so the Run classifies the isolation's set-up fault like a fault of the test body.
  if (context().setup_fault()) context().store();
}

void StoreTest::TearDown() {
  // Closed here, while GoogleTest can still fail the test with what it leaked.
  const std::string leaked = Run::current().close_test();
  if (!leaked.empty()) ADD_FAILURE() << leaked;
}

eventstore::EventStore& StoreTest::store() {
  return context().store();
}

const repo::Repo& StoreTest::repo() {
  return context().repo();
}

TestContext& StoreTest::context() {
  return Run::current().current_test();
}

int run_all_tests(int argc, char** argv, const std::function<void(HarnessSetup&)>& configure) {
  TeardownScope teardown_scope;
  Run run("GoogleTest");
  auto remaining = run.take_options(argc, argv, process_environment());
  if (!remaining) return run.exit_code();
  const bool help = asks_for_help(*remaining);
  std::vector<char*> framework_argv;
  for (std::string& argument : *remaining) framework_argv.push_back(argument.data());
  int framework_argc = static_cast<int>(framework_argv.size());
  framework_argv.push_back(nullptr);
  ::testing::InitGoogleTest(&framework_argc, framework_argv.data());
  if (help) {
    std::fputs(options_help().c_str(), stdout);
    return run.finish(false);
  }
  // InitGoogleTest leaves what it does not know in argv.
  if (framework_argc > 1) return run.usage_error(framework_argv[1], {}, kGtestFlags);
  if (::testing::GTEST_FLAG(list_tests)) return run.finish(RUN_ALL_TESTS() != 0);
  if (!run.start(configure)) return run.exit_code();
  run.set_test_selector([](const std::string& test) -> std::vector<std::string> {
    // A disabled test runs only when asked for.
    if (test.starts_with("DISABLED_") || test.find(".DISABLED_") != std::string::npos)
      return {"--gtest_also_run_disabled_tests", "--gtest_filter=" + test};
    return {"--gtest_filter=" + test};
  });
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (report_on_stdout()) delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new RunListener);
  const int status = RUN_ALL_TESTS();
  return run.finish(status != 0);
}

}  // namespace gamebot::harness::gtest
