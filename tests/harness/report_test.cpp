#include "gamebot/harness/report.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gamebot/core/error.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot;
using namespace gamebot::harness;
using namespace std::chrono_literals;

namespace {

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.c_str(), text.size());
  INFO(text);
  REQUIRE_FALSE(document.HasParseError());
  REQUIRE(document.IsObject());
  return document;
}

TestRecord test(std::string name, TestOutcome outcome, std::chrono::nanoseconds duration,
                std::optional<FaultClass> fault = std::nullopt, std::string message = {}) {
  return TestRecord{std::move(name), outcome, duration, fault, std::move(message)};
}

}  // namespace

TEST_CASE("the report counts assertion and infrastructure failures apart", "[harness][report]") {
  RunReport report;
  report.record_test(test("a", TestOutcome::passed, 1ms));
  report.record_test(test("b", TestOutcome::assertion_failure, 2ms, std::nullopt, "1 != 2"));
  report.record_test(test("c", TestOutcome::infrastructure_failure, 3ms, FaultClass::connectivity,
                          "server closed the connection"));
  report.record_test(test("d", TestOutcome::infrastructure_failure, 3ms, FaultClass::timeout));
  TestTotals totals = report.totals();
  CHECK(totals.total == 4);
  CHECK(totals.passed == 1);
  CHECK(totals.assertion_failures == 1);
  CHECK(totals.infrastructure_failures == 2);
  auto faults = report.faults_by_class();
  CHECK(faults[FaultClass::connectivity] == 1);
  CHECK(faults[FaultClass::timeout] == 1);
  CHECK(report.verdict() == "infrastructure_failure");
}

TEST_CASE("the verdict follows phases, infrastructure and assertion failures",
          "[harness][report]") {
  RunReport passed;
  passed.record_phase({Phase::preflight, true, 1ms, std::nullopt, ""});
  passed.record_test(test("a", TestOutcome::passed, 1ms));
  CHECK(passed.verdict() == "passed");

  RunReport failed;
  failed.record_test(test("a", TestOutcome::assertion_failure, 1ms));
  CHECK(failed.verdict() == "failed");

  RunReport aborted;
  aborted.record_phase({Phase::connectivity, false, 30s, FaultClass::connectivity, "refused"});
  CHECK(aborted.verdict() == "aborted");
  CHECK(aborted.faults_by_class()[FaultClass::connectivity] == 1);
}

TEST_CASE("the ten slowest tests come slowest first", "[harness][report]") {
  RunReport report;
  for (int i = 0; i < 25; ++i) {
    report.record_test(test("t" + std::to_string(i), TestOutcome::passed,
                            std::chrono::milliseconds((i * 7) % 25)));
  }
  auto slowest = report.slowest();
  REQUIRE(slowest.size() == 10);
  for (std::size_t i = 1; i < slowest.size(); ++i) {
    CHECK(slowest[i - 1].duration >= slowest[i].duration);
  }
  CHECK(slowest.front().duration == 24ms);
  CHECK(slowest.back().duration == 15ms);
  CHECK(report.slowest(3).size() == 3);
}

TEST_CASE("pool counters keep the peak and add waits and timeouts", "[harness][report]") {
  RunReport report;
  report.record_pool({4, 10, 1});
  report.record_pool({2, 5, 0});
  PoolCounters pool = report.pool();
  CHECK(pool.peak_in_use == 4);
  CHECK(pool.waits == 15);
  CHECK(pool.timeouts == 1);
  report.add_retries(3);
  report.add_retries(2);
  CHECK(report.retries() == 5);
}

TEST_CASE("the pool's peak in use is never below what its timeline shows", "[harness][report]") {
  RunReport report;
  report.record_pool_sample(0, 1);
  report.record_pool_sample(2, 2);
  report.record_pool_sample(1, 2);
  CHECK(report.pool().peak_in_use == 2);
  const rapidjson::Document json = parse_json(report.to_json());
  std::uint64_t timeline_peak = 0;
  for (const auto& sample : json["pool_timeline"].GetArray())
    timeline_peak = std::max(timeline_peak, sample["in_use"].GetUint64());
  CHECK(json["pool"]["peak_in_use"].GetUint64() == timeline_peak);
  // The pool's own counters may only raise it.
  report.record_pool({1, 0, 0});
  CHECK(report.pool().peak_in_use == 2);
}

TEST_CASE("a failed test's record in the JSON report: why, where, database, log and rerun",
          "[harness][report]") {
  RunReport report;
  report.set_command_line({"./tests", "--backend", "sqlite", "[scores]"});
  report.set_options_text("backend=sqlite isolation=transaction");
  TestRecord failed = test("scores add up", TestOutcome::assertion_failure, 2ms,
                           FaultClass::serialization, "REQUIRE( a == b ) with expansion 1 == 2");
  failed.kind = "assertion";
  failed.failure = {"tests/score_test.cpp", 42, "REQUIRE( a == b )", "1 == 2", "", ""};
  failed.database = "sqlite:/tmp/run/run.db";
  failed.log = {"12:00:00.000 [gamebot warn] slow query", "12:00:00.001 [gamebot info] done"};
  failed.log_dropped = 7;
  failed.rerun = "./tests --backend sqlite 'scores add up'";
  report.record_test(failed);
  report.record_test(test("a passing one", TestOutcome::passed, 1ms));
  const rapidjson::Document json = parse_json(report.to_json());
  const auto& t = json["tests"][0];
  CHECK(std::string(t["kind"].GetString()) == "assertion");
  CHECK(std::string(t["fault"].GetString()) == "serialization");
  CHECK(std::string(t["file"].GetString()) == "tests/score_test.cpp");
  CHECK(t["line"].GetInt() == 42);
  CHECK(std::string(t["expression"].GetString()) == "REQUIRE( a == b )");
  CHECK(std::string(t["expansion"].GetString()) == "1 == 2");
  CHECK(std::string(t["database"].GetString()) == "sqlite:/tmp/run/run.db");
  REQUIRE(t["log"].Size() == 2);
  CHECK(std::string(t["log"][1].GetString()) == "12:00:00.001 [gamebot info] done");
  CHECK(t["log_dropped"].GetUint64() == 7);
  CHECK(std::string(t["rerun"].GetString()) == "./tests --backend sqlite 'scores add up'");
  REQUIRE(json["command_line"].Size() == 4);
  CHECK(std::string(json["command_line"][3].GetString()) == "[scores]");
  CHECK(std::string(json["options"].GetString()) == "backend=sqlite isolation=transaction");
  REQUIRE(json["tests_span"].IsObject());
  CHECK(json["tests_span"]["end_ms"].GetDouble() >= json["tests_span"]["start_ms"].GetDouble());
  CHECK_FALSE(json["slowest"][0].HasMember("log"));  // the slowest list stays short
}

TEST_CASE("commands are quoted for a POSIX shell only where needed", "[harness][report]") {
  CHECK(shell_command({"./tests", "--backend", "sqlite"}) == "./tests --backend sqlite");
  CHECK(shell_command({"./tests", "a test, [with] *", "it's", ""}) ==
        "./tests 'a test, [with] *' 'it'\\''s' ''");
}

TEST_CASE("a phase timer records its duration and outcome", "[harness][report]") {
  RunReport report;
  {
    PhaseTimer timer(report, Phase::provisioning);
    timer.succeed("database gamebot_test_x");
  }
  {
    PhaseTimer timer(report, Phase::schema);
    timer.fail(Error(FaultClass::schema, "table events: column stream_version is missing"));
  }
  { PhaseTimer left_by_exception(report, Phase::teardown); }
  auto phases = report.phases();
  REQUIRE(phases.size() == 3);
  CHECK(phases[0].phase == Phase::provisioning);
  CHECK(phases[0].ok);
  CHECK(phases[0].message == "database gamebot_test_x");
  CHECK(phases[0].duration > 0ns);
  CHECK_FALSE(phases[1].ok);
  CHECK(phases[1].fault == FaultClass::schema);
  CHECK_THAT(phases[1].message, Catch::Contains("stream_version"));
  CHECK_FALSE(phases[2].ok);
  CHECK(phases[2].fault == FaultClass::internal);
}

TEST_CASE("the JSON report holds every figure and parses", "[harness][report]") {
  RunReport report;
  report.set_run_id("20250102t030405_p1_00000000");
  report.set_backend(Backend::postgres);
  report.set_isolation(Isolation::transaction);
  report.record_phase({Phase::preflight, true, 2ms, std::nullopt, "12 types"});
  report.record_phase({Phase::connectivity, true, 15ms, std::nullopt, ""});
  report.record_pool({3, 7, 0});
  report.add_retries(2);
  report.record_fault(FaultClass::connectivity);
  report.record_test(test("quotes \"and\" backslash \\ and\nnewline", TestOutcome::passed, 5ms));
  report.record_test(test("caf\xc3\xa9 \xff bad byte", TestOutcome::assertion_failure, 9ms,
                          std::nullopt, "REQUIRE( x == 2 ) with \x01 control"));
  report.record_test(test("dead server", TestOutcome::infrastructure_failure, 1ms,
                          FaultClass::connectivity, "connection refused"));

  report.record_connections({5, 12, 9});

  rapidjson::Document json = parse_json(report.to_json());
  CHECK(std::string(json["run_id"].GetString()) == "20250102t030405_p1_00000000");
  CHECK(std::string(json["backend"].GetString()) == "postgres");
  CHECK(std::string(json["isolation"].GetString()) == "transaction");
  CHECK(std::string(json["verdict"].GetString()) == "infrastructure_failure");
  REQUIRE(json["phases"].Size() == 2);
  CHECK(std::string(json["phases"][0]["name"].GetString()) == "preflight");
  CHECK(json["phases"][0]["duration_ms"].GetDouble() == Approx(2.0));
  CHECK(json["phases"][1]["fault"].IsNull());
  CHECK(json["pool"]["peak_in_use"].GetUint64() == 3);
  CHECK(json["pool"]["waits"].GetUint64() == 7);
  CHECK(json["connections"]["peak_open"].GetUint64() == 5);
  CHECK(json["connections"]["cap"].GetUint64() == 12);
  CHECK(json["connections"]["opened"].GetUint64() == 9);
  CHECK(json["retries"].GetUint64() == 2);
  CHECK(json["faults"]["connectivity"].GetUint64() == 2);  // recorded + the infra failure
  CHECK(json["totals"]["total"].GetUint64() == 3);
  CHECK(json["totals"]["assertion_failures"].GetUint64() == 1);
  CHECK(json["totals"]["infrastructure_failures"].GetUint64() == 1);
  REQUIRE(json["tests"].Size() == 3);
  CHECK(std::string(json["tests"][0]["name"].GetString()) ==
        "quotes \"and\" backslash \\ and\nnewline");
  CHECK(std::string(json["tests"][1]["name"].GetString()) == "caf\xc3\xa9 \xef\xbf\xbd bad byte");
  CHECK(std::string(json["tests"][2]["fault"].GetString()) == "connectivity");
  CHECK(std::string(json["tests"][2]["outcome"].GetString()) == "infrastructure_failure");
  REQUIRE(json["slowest"].Size() == 3);
  CHECK(std::string(json["slowest"][0]["name"].GetString()).starts_with("caf"));
}

TEST_CASE("an empty report is valid JSON too", "[harness][report]") {
  RunReport report;
  rapidjson::Document json = parse_json(report.to_json());
  CHECK(json["backend"].IsNull());
  CHECK(json["tests"].Size() == 0);
  CHECK(std::string(json["verdict"].GetString()) == "passed");
}

TEST_CASE("the report is written to a file, and an unwritable path is a configuration error",
          "[harness][report]") {
  gamebot::testing::TempDir dir;
  RunReport report;
  report.record_test(test("a", TestOutcome::passed, 1ms));
  const std::filesystem::path path = std::filesystem::path(dir.path()) / "report.json";
  report.write_json(path);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == report.to_json());
  try {
    report.write_json(std::filesystem::path(dir.path()) / "missing-dir" / "report.json");
    FAIL("expected a configuration error");
  } catch (const Error& e) {
    CHECK(e.fault() == FaultClass::configuration);
    CHECK_THAT(e.message(), Catch::Contains("missing-dir"));
  }
}
