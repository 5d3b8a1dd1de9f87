// The Done-when of issue 16's connection budget: a 200-case PostgreSQL suite run the way users
// run theirs (one CTest test per case, `ctest -j2`) against a server of max_connections = 20
// passes with no connectivity failure, for transaction and database isolation, and every
// process's run report shows it stayed within its connection cap.

#include <rapidjson/document.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/repo/identifier.hpp"

using namespace gamebot::harness;
using namespace gamebot::harness::testing;

namespace {

// 200, the Done-when's figure; the ASan build runs fewer (CMakeLists.txt says why).
constexpr int kCases = GAMEBOT_BUDGET_SUITE_CASES;

struct TemporaryDirectory {
  std::filesystem::path path;
  TemporaryDirectory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gamebot-suite-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// CMake's bracket argument: no escape can end it early (no "]=]" in the paths we write).
std::string bracket(const std::string& text) {
  REQUIRE(text.find("]=]") == std::string::npos);
  return "[=[" + text + "]=]";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("a suite of one process per case under ctest -j2 passes on 20 server slots",
          "[harness][postgres][slow]") {
  const std::string isolation = GENERATE(as<std::string>{}, "transaction", "database");
  EphemeralPostgresOptions options;
  options.settings = {{"max_connections", "20"}};
  options.spare_clusters = 0;
  EphemeralPostgres server(options);
  TemporaryDirectory dir;

  std::ofstream tests(dir.path / "CTestTestfile.cmake");
  for (int i = 0; i < kCases; ++i) {
    const std::string report = (dir.path / ("case-" + std::to_string(i) + ".json")).string();
    tests << "add_test(" << bracket("case " + std::to_string(i)) << " "
          << bracket(GAMEBOT_HARNESS_CATCH2_CHILD);
    for (const std::string& a :
         {std::string("--backend"), std::string("postgres"), std::string("--database-url"),
          server.url(), std::string("--isolation"), isolation, std::string("--report"), report,
          std::string("child: append and read back")})
      tests << " " << bracket(a);
    tests << ")\n";
  }
  tests.close();

  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome outcome =
      run_to_end({GAMEBOT_CTEST, "--test-dir", dir.path.string(), "-j2", "--output-on-failure"}, {},
                 std::chrono::seconds(300));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("isolation " << isolation << ", ctest output:\n" << outcome.output);
  CHECK(outcome.exit_code() == 0);
  CHECK_THAT(outcome.output, !Catch::Contains("no connection slot freed within"));

  // Every process counted its connections and kept within the cap.
  std::size_t peak = 0;
  for (int i = 0; i < kCases; ++i) {
    const std::string report = read_file(dir.path / ("case-" + std::to_string(i) + ".json"));
    INFO("case " << i << " report:\n" << report);
    rapidjson::Document json;
    json.Parse(report.c_str(), report.size());
    REQUIRE_FALSE(json.HasParseError());
    REQUIRE(json.HasMember("connections"));
    const rapidjson::Value& figure = json["connections"];
    REQUIRE(figure.HasMember("peak_open"));
    REQUIRE(figure.HasMember("cap"));
    const std::size_t open = figure["peak_open"].GetUint64();
    CHECK(figure["cap"].GetUint64() == HarnessOptions{}.max_connections);
    CHECK(open > 0);
    CHECK(open <= HarnessOptions{}.max_connections);
    peak = std::max(peak, open);
  }
  // For bench/RESULTS.md: the kit logs to stderr, stdout is the framework's.
  std::cerr << "connection budget suite: " << isolation << " isolation, " << kCases
            << " processes under ctest -j2 on 20 slots in " << seconds
            << " s; peak connections of one process " << peak << "\n";
}
