// stdout belongs to the test framework: a harness binary's reporter output (Catch2's JUnit and XML
// reporters, GoogleTest's XML output sent to stdout) must be all that stdout carries, on every
// backend and whether tests pass or fail: it parses as XML (xmllint). The harness's summary, leak
// notes and the libraries' logs go to stderr.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "gamebot/testing/postgres.hpp"

using gamebot::harness::testing::ChildProcess;

namespace {

// Runs `binary` with stderr discarded; returns its stdout and exit status.
std::pair<std::string, int> stdout_of(const std::string& binary,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> command{"/usr/bin/env",
                                   "GAMEBOT_TEST_LOG_LEVEL=info",
                                   "GAMEBOT_CHILD_SCENARIO=",
                                   "/bin/sh",
                                   "-c",
                                   "exec \"$0\" \"$@\" 2>/dev/null",
                                   binary};
  command.insert(command.end(), args.begin(), args.end());
  ChildProcess child(command);
  std::string out;
  while (auto line = child.read_line(std::chrono::seconds(60))) out += *line + "\n";
  const int status = child.wait();
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// xmllint's verdict on `text` (its diagnostics, empty when the text is well-formed XML).
std::string xmllint_errors(const std::string& text) {
  char path[] = "/tmp/gamebot-stdout-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  ChildProcess lint({"/bin/sh", "-c", "exec xmllint --noout \"$0\" 2>&1", path});
  std::string errors;
  while (auto line = lint.read_line(std::chrono::seconds(30))) errors += *line + "\n";
  const int status = lint.wait();
  ::unlink(path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return errors.empty() ? "xmllint failed" : errors;
  return {};
}

// The backend's harness flags.
std::vector<std::string> backend_args(const std::string& backend) {
  if (backend == "postgres") return {"--database-url", gamebot::testing::postgres_url()};
  return {"--backend", backend};
}

}  // namespace

TEST_CASE("a Catch2 reporter writing to stdout gets stdout to itself, passing and failing",
          "[harness][stdout]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "sqlite", "postgres");
  const std::string reporter = GENERATE(as<std::string>{}, "junit", "xml");
  // [short]: twelve passing tests that append; [many-failures]: a failing one.
  const std::string selection = GENERATE(as<std::string>{}, "[short]", "[many-failures]");
  std::vector<std::string> args = backend_args(backend);
  for (const char* a : {"-r", reporter.c_str(), selection.c_str()}) args.emplace_back(a);
  const auto [out, code] = stdout_of(GAMEBOT_HARNESS_CATCH2_CHILD, args);
  INFO(backend << " " << reporter << " " << selection << "\n" << out);
  CHECK(code == (selection == "[short]" ? 0 : 1));
  REQUIRE(out.rfind("<?xml", 0) == 0);
  CHECK(out.find("gamebot") == std::string::npos);
  CHECK(out.find("applied migration") == std::string::npos);
  const std::string closing = reporter == "junit" ? "</testsuites>" : "</Catch>";
  CHECK(out.find(closing) != std::string::npos);
  CHECK(out.substr(out.find(closing) + closing.size()).find_first_not_of(" \n") ==
        std::string::npos);
  CHECK(xmllint_errors(out).empty());
}

#ifdef GAMEBOT_HARNESS_GTEST_CHILD
TEST_CASE("GoogleTest's XML output sent to stdout gets stdout to itself, passing and failing",
          "[harness][stdout]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "sqlite", "postgres");
  const std::string filter = GENERATE(as<std::string>{}, "ChildStoreTest.AppendsAndWaits",
                                      "ChildStoreTest.DISABLED_WaitsForAnEventThatNeverComes");
  std::vector<std::string> args = backend_args(backend);
  for (const std::string& a :
       {std::string("--gtest_output=xml:/dev/stdout"),
        std::string("--gtest_also_run_disabled_tests"), "--gtest_filter=" + filter})
    args.push_back(a);
  const auto [out, code] = stdout_of(GAMEBOT_HARNESS_GTEST_CHILD, args);
  INFO(backend << " " << filter << "\n" << out);
  CHECK(code == (filter.find("DISABLED_") == std::string::npos ? 0 : 1));
  REQUIRE(out.rfind("<?xml", 0) == 0);
  CHECK(out.find("</testsuites>") != std::string::npos);
  CHECK(xmllint_errors(out).empty());
}
#endif
