// What a failing run tells its user: the record of each failed test in the JSON run report,
// filled the same way under Catch2 (catch2_child.cpp) and GoogleTest (gtest_child.cpp), run as
// child processes. The record's rerun command is run too: it must rerun just that test. And the
// report's pool figures agree with its own timeline.

#include <rapidjson/document.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "gamebot/testing/postgres.hpp"

using gamebot::harness::testing::ChildOutcome;
using gamebot::harness::testing::run_to_end;

namespace {

const std::vector<std::string> kEnv{"GAMEBOT_TEST_LOG_LEVEL=warn", "GAMEBOT_CHILD_SCENARIO="};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

rapidjson::Document parse_report(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  INFO(path.string() << ":\n" << text);
  rapidjson::Document document;
  document.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(document.HasParseError());
  REQUIRE(document.IsObject());
  REQUIRE(document.HasMember("tests"));
  REQUIRE(document["tests"].IsArray());
  return document;
}

std::string string_of(const rapidjson::Value& object, const char* key) {
  if (!object.HasMember(key) || !object[key].IsString())
    return "<missing " + std::string(key) + ">";
  return object[key].GetString();
}

// The one test of a report, its fields required to be there.
const rapidjson::Value& only_test(const rapidjson::Document& report) {
  REQUIRE(report["tests"].Size() == 1);
  const rapidjson::Value& test = report["tests"][0];
  for (const char* key : {"kind", "file", "expression", "expansion", "exception_type",
                          "exception_text", "database", "rerun"}) {
    INFO(key);
    REQUIRE(test.HasMember(key));
    REQUIRE(test[key].IsString());
  }
  REQUIRE(test.HasMember("line"));
  REQUIRE(test["line"].IsInt());
  REQUIRE(test.HasMember("log"));
  REQUIRE(test["log"].IsArray());
  REQUIRE(test.HasMember("log_dropped"));
  REQUIRE(test["log_dropped"].IsUint64());
  return test;
}

// Runs a record's rerun command with a report of its own; returns that report.
rapidjson::Document rerun(const std::string& command, const std::filesystem::path& report) {
  const ChildOutcome outcome =
      run_to_end({"/bin/sh", "-c", command + " --report '" + report.string() + "'"}, kEnv);
  INFO(command << "\n" << outcome.output);
  CHECK(outcome.exit_code() == 1);
  return parse_report(report);
}

void check_log(const rapidjson::Value& test) {
  const rapidjson::Value& log = test["log"];
  // The test logged 60 lines; the record keeps the last 50 and counts the rest.
  REQUIRE(log.Size() == 50);
  CHECK(test["log_dropped"].GetUint64() >= 10);
  CHECK_THAT(log[log.Size() - 1].GetString(), Catch::Contains("child log line 59"));
  CHECK_THAT(log[log.Size() - 50].GetString(), Catch::Contains("child log line 10"));
}

}  // namespace

TEST_CASE(
    "a failed Catch2 check's record: where, the expression and its values, the database, the "
    "last 50 log lines and a command that reruns just that test",
    "[harness][run][report]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path report = std::filesystem::path(temp.path()) / "run.json";
  const ChildOutcome outcome = run_to_end({GAMEBOT_HARNESS_CATCH2_CHILD, "--backend", "sqlite",
                                           "--report", report.string(), "[logs-then-fails]"},
                                          kEnv);
  INFO(outcome.output);
  REQUIRE(outcome.exit_code() == 1);
  const rapidjson::Document document = parse_report(report);
  const rapidjson::Value& test = only_test(document);
  CHECK(string_of(test, "outcome") == "assertion_failure");
  CHECK(string_of(test, "kind") == "assertion");
  CHECK_THAT(string_of(test, "file"), Catch::EndsWith("catch2_child.cpp"));
  CHECK(test["line"].GetInt() > 0);
  CHECK(string_of(test, "expression") == "REQUIRE( answer == 2 )");
  CHECK(string_of(test, "expansion") == "1 == 2");
  CHECK(string_of(test, "exception_type").empty());
  CHECK_THAT(string_of(test, "database"), Catch::StartsWith("sqlite:"));
  check_log(test);
  // The run's command line and options, for the page.
  REQUIRE(document.HasMember("command_line"));
  REQUIRE(document["command_line"].IsArray());
  CHECK(document["command_line"].Size() == 6);
  CHECK_THAT(string_of(document, "options"), Catch::Contains("backend=sqlite"));

  const std::string command = string_of(test, "rerun");
  CHECK_THAT(command, Catch::Contains("--backend sqlite"));
  const rapidjson::Document again =
      rerun(command, std::filesystem::path(temp.path()) / "rerun.json");
  REQUIRE(again["tests"].Size() == 1);
  CHECK(string_of(again["tests"][0], "name") == "child: logs, then fails a check");
  CHECK(string_of(again["tests"][0], "rerun") == command);
}

TEST_CASE("an exception that escaped a Catch2 test is recorded with its type and text",
          "[harness][run][report]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path report = std::filesystem::path(temp.path()) / "run.json";
  const ChildOutcome outcome = run_to_end({GAMEBOT_HARNESS_CATCH2_CHILD, "--backend", "sqlite",
                                           "--report", report.string(), "[throws]"},
                                          kEnv);
  INFO(outcome.output);
  REQUIRE(outcome.exit_code() == 1);
  const rapidjson::Document document = parse_report(report);
  const rapidjson::Value& test = only_test(document);
  CHECK(string_of(test, "kind") == "exception");
  CHECK(string_of(test, "exception_type") == "std::runtime_error");
  CHECK(string_of(test, "exception_text") == "the child threw");
  CHECK_THAT(string_of(test, "file"), Catch::EndsWith("catch2_child.cpp"));
}

TEST_CASE(
    "a failed GoogleTest check's record: where, GoogleTest's text, the database, the last 50 log "
    "lines and a --gtest_filter command that reruns just that test",
    "[harness][run][report]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path report = std::filesystem::path(temp.path()) / "run.json";
  const ChildOutcome outcome = run_to_end(
      {GAMEBOT_HARNESS_GTEST_CHILD, "--backend", "sqlite", "--report", report.string(),
       "--gtest_also_run_disabled_tests", "--gtest_filter=ChildStoreTest.DISABLED_LogsThenFails"},
      kEnv);
  INFO(outcome.output);
  REQUIRE(outcome.exit_code() == 1);
  const rapidjson::Document document = parse_report(report);
  const rapidjson::Value& test = only_test(document);
  CHECK(string_of(test, "kind") == "assertion");
  CHECK_THAT(string_of(test, "file"), Catch::EndsWith("gtest_child.cpp"));
  CHECK(test["line"].GetInt() > 0);
  CHECK_THAT(string_of(test, "expansion"), Catch::Contains("Expected equality of these values"));
  CHECK_THAT(string_of(test, "expansion"), Catch::Contains("answer"));
  CHECK_THAT(string_of(test, "database"), Catch::StartsWith("sqlite:"));
  check_log(test);

  const std::string command = string_of(test, "rerun");
  CHECK_THAT(command, Catch::Contains("--gtest_filter=ChildStoreTest.DISABLED_LogsThenFails"));
  const rapidjson::Document again =
      rerun(command, std::filesystem::path(temp.path()) / "rerun.json");
  REQUIRE(again["tests"].Size() == 1);
  CHECK(string_of(again["tests"][0], "name") == "ChildStoreTest.DISABLED_LogsThenFails");
}

TEST_CASE("a run's pool peak in use is the highest its timeline shows, never below",
          "[harness][run][report]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path report = std::filesystem::path(temp.path()) / "run.json";
  const ChildOutcome outcome = run_to_end(
      {GAMEBOT_HARNESS_CATCH2_CHILD, "--backend", "sqlite", "--report", report.string(), "[child]"},
      kEnv);
  INFO(outcome.output);
  REQUIRE(outcome.exit_code() == 0);
  const rapidjson::Document document = parse_report(report);
  std::uint64_t timeline_peak = 0;
  for (const auto& sample : document["pool_timeline"].GetArray())
    timeline_peak = std::max(timeline_peak, sample["in_use"].GetUint64());
  CHECK(timeline_peak >= 1);  // a test held its sandbox's connection
  CHECK(document["pool"]["peak_in_use"].GetUint64() == timeline_peak);
}
