// main() for test binaries linking gamebot::harness_catch2_main (see catch2.hpp): Catch2's hooks
// over the harness Run (run.hpp), which owns the lifecycle, the verdicts and the exit code.

#define CATCH_CONFIG_RUNNER
// Catch2's fatal-signal handler reports SIGINT/SIGTERM as a failed test, ends the run's
// bookkeeping and re-raises into the harness handler, which returns (the cleanup runs on the
// harness's watcher thread): the test thread then continued inside a run Catch had already
// ended, and crashed (SIGSEGV) while the databases were being dropped. The harness handles the
// termination signals itself; crashes (SIGSEGV, SIGABRT) kill the process, and the next run's
// reaper removes what it left.
#define CATCH_CONFIG_NO_POSIX_SIGNALS

#include <cxxabi.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "gamebot/harness/catch2.hpp"
#include "gamebot/harness/run.hpp"
#include "gamebot/harness/teardown.hpp"
#include "log.hpp"

namespace gamebot::harness {

__attribute__((weak)) void configure(HarnessSetup&) {}

namespace {

std::optional<FaultClass> g_thrown_fault;  // the fault of the last gamebot::Error a test threw
std::string g_thrown_type;  // the dynamic type of the last exception Catch2 translated

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(type.name());
}

}  // namespace

DatabaseManager& current_database_manager() {
  return Run::current().database_manager();
}

TestContext& current_test() {
  return Run::current().current_test();
}

namespace {

class HarnessListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    g_thrown_fault.reset();
    g_thrown_type.clear();
    test_line_ = info.lineInfo;
    if (Run::active() != nullptr) Run::active()->begin_test(info.name);
  }

  void sectionStarting(const Catch::SectionInfo&) override {
    if (++depth_ > 1) nested_ = true;
  }

  // The test case's own section ends each time Catch2 runs the body. A run of it that entered
  // no SECTION is its only one: the test is closed here, where a leak can still be recorded as
  // a failed assertion of that test, so Catch2's counts and the harness's agree (a test with
  // sections is closed in testCaseEnded(), and its leak counted by the harness alone). The
  // listener's sectionEnded() runs before the reporter's, inside the test case.
  void sectionEnded(const Catch::SectionStats&) override {
    if (--depth_ > 0) return;
    const bool only_run = !nested_;
    nested_ = false;
    if (!only_run || Run::active() == nullptr) return;
    const std::string leaked = Run::active()->close_test();
    if (leaked.empty()) return;
    detail::log().error("{}", leaked);  // in full on stderr too: a reporter may wrap or file it
    Catch::AssertionReaction reaction;
    Catch::getResultCapture().handleMessage(
        Catch::AssertionInfo{Catch::StringRef("GAMEBOT_LEAK_CHECK"), test_line_, Catch::StringRef(),
                             Catch::ResultDisposition::ContinueOnFailure},
        Catch::ResultWas::ExplicitFailure, leaked, reaction);
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    const Catch::AssertionResult& result = stats.assertionResult;
    if (result.isOk() || Run::active() == nullptr) return true;
    TestFailureDetail failure;
    failure.file = result.getSourceInfo().file;
    failure.line = static_cast<int>(result.getSourceInfo().line);
    if (result.hasExpression()) {
      failure.expression = result.getExpressionInMacro();
      failure.expansion = result.getExpandedExpression();
    }
    if (result.getResultType() == Catch::ResultWas::ThrewException) {
      failure.exception_type = g_thrown_type.empty() ? "unknown exception" : g_thrown_type;
      failure.exception_text = result.getMessage();
    }
    Run::active()->record_failure(
        std::move(failure),
        result.hasMessage()
            ? result.getMessage()
            : result.getExpressionInMacro() + " with expansion " + result.getExpandedExpression());
    return true;
  }

  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    if (Run::active() == nullptr) return;
    TestEnd end;
    end.failed = stats.totals.assertions.failed > 0;
    end.fault = g_thrown_fault;
    Run::active()->end_test(end);
  }

 private:
  Catch::SourceLineInfo test_line_{"", 0};
  int depth_ = 0;        // sections open, the test case's own included
  bool nested_ = false;  // this run of the body entered a SECTION
};

// Catch2 selects a test by its name; a name's filter characters are escaped.
std::vector<std::string> select_by_name(const std::string& test) {
  std::string filter;
  for (char c : test) {
    if (std::string_view("\\[],*~\"").find(c) != std::string_view::npos) filter += '\\';
    filter += c;
  }
  return {filter};
}

// Catch2's error text for an unknown argument is "Unrecognised token: <argument>".
std::string rejected_argument(const std::string& message) {
  constexpr std::string_view kPrefix = "Unrecognised token: ";
  const std::size_t at = message.find(kPrefix);
  if (at == std::string::npos) return {};
  const std::string rest = message.substr(at + kPrefix.size());
  return rest.substr(0, rest.find_first_of(" \n"));
}

}  // namespace

}  // namespace gamebot::harness

using GamebotHarnessListener = gamebot::harness::HarnessListener;
CATCH_REGISTER_LISTENER(GamebotHarnessListener)

// Registered first, so it is tried last (Catch2 tries the latest translator first): any other
// std::exception, named for the test's failure record.
CATCH_TRANSLATE_EXCEPTION(const std::exception& error) {
  gamebot::harness::g_thrown_type = gamebot::harness::type_name(typeid(error));
  return error.what();
}

CATCH_TRANSLATE_EXCEPTION(const gamebot::Error& error) {
  gamebot::harness::g_thrown_fault = error.fault();
  gamebot::harness::g_thrown_type = gamebot::harness::type_name(typeid(error));
  return error.what();
}

int main(int argc, char** argv) {
  using namespace gamebot::harness;
  TeardownScope teardown_scope;
  Run run("Catch2");
  auto remaining = run.take_options(argc, argv, process_environment());
  if (!remaining) return run.exit_code();
  std::vector<const char*> framework_argv;
  for (const std::string& argument : *remaining) framework_argv.push_back(argument.c_str());

  Catch::Session session;
  // Parsed here rather than by applyCommandLine(), so a rejected argument is a usage error with
  // the harness's exit status and hint instead of Catch2's 255.
  auto parsed = session.cli().parse(
      Catch::clara::Args(static_cast<int>(framework_argv.size()), framework_argv.data()));
  if (!parsed)
    return run.usage_error(rejected_argument(parsed.errorMessage()), parsed.errorMessage());
  const Catch::ConfigData& config = session.configData();
  if (config.showHelp) {
    session.showHelp();
    std::fputs(options_help().c_str(), stdout);
    return run.finish(false);
  }
  if (config.libIdentify) session.libIdentify();
  if (config.listTests || config.listTestNamesOnly || config.listTags || config.listReporters ||
      config.libIdentify)
    return run.finish(session.run() != 0);
  if (!run.start(configure)) return run.exit_code();
  run.set_test_selector(select_by_name);
  const int status = session.run();
  return run.finish(status != 0);
}
