// stdout belongs to the test framework: a harness binary's reporter output (Catch2's JUnit and XML
// reporters write to stdout) must be all that stdout carries, on every backend and whether tests
// pass or fail. The harness's summary, leak notes and the libraries' logs go to stderr.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "child_process.hpp"

using gamebot::harness::testing::ChildProcess;

namespace {

// Runs the Catch2 child with stderr discarded; returns its stdout and exit status.
std::pair<std::string, int> stdout_of(const std::vector<std::string>& args) {
  std::vector<std::string> command{
      "/usr/bin/env", "GAMEBOT_TEST_LOG_LEVEL=info",    "GAMEBOT_CHILD_SCENARIO=",   "/bin/sh",
      "-c",           "exec \"$0\" \"$@\" 2>/dev/null", GAMEBOT_HARNESS_CATCH2_CHILD};
  command.insert(command.end(), args.begin(), args.end());
  ChildProcess child(command);
  std::string out;
  while (auto line = child.read_line(std::chrono::seconds(60))) out += *line + "\n";
  const int status = child.wait();
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

TEST_CASE("a reporter writing to stdout gets stdout to itself, passing and failing",
          "[harness][stdout]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "sqlite");
  const std::string reporter = GENERATE(as<std::string>{}, "junit", "xml");
  // [short]: twelve passing tests that append; [many-failures]: a failing one.
  const std::string selection = GENERATE(as<std::string>{}, "[short]", "[many-failures]");
  const auto [out, code] = stdout_of({"--backend", backend, "-r", reporter, selection});
  INFO(backend << " " << reporter << " " << selection << "\n" << out);
  CHECK(code == (selection == "[short]" ? 0 : 1));
  REQUIRE(out.rfind("<?xml", 0) == 0);
  CHECK(out.find("gamebot") == std::string::npos);
  CHECK(out.find("applied migration") == std::string::npos);
  const std::string closing = reporter == "junit" ? "</testsuites>" : "</Catch>";
  CHECK(out.find(closing) != std::string::npos);
  CHECK(out.substr(out.find(closing) + closing.size()).find_first_not_of(" \n") ==
        std::string::npos);
}
