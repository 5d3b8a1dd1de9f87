// The HTML run report: what the page embeds, and what headless Chromium shows of it.
#include "gamebot/harness/report_html.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "gamebot/harness/report.hpp"
#include "gamebot/testing/postgres.hpp"

extern char** environ;

using namespace gamebot;
using namespace gamebot::harness;
using namespace std::chrono_literals;

namespace {

// A run with two passing tests, an assertion failure whose name carries markup, an
// infrastructure failure and a few pool samples.
void fill_sample(RunReport& report) {
  report.set_run_id("20261127t120000_p42_abcd");
  report.set_backend(Backend::sqlite);
  report.set_isolation(Isolation::transaction);
  report.set_command_line({"./game_tests", "--backend", "sqlite", "--report", "run.json"});
  report.set_options_text("backend=sqlite isolation=transaction");
  report.record_phase({Phase::preflight, true, 3ms, std::nullopt, "5 types checked"});
  report.record_phase({Phase::connectivity, true, 1ms, std::nullopt, "connected"});
  report.record_phase({Phase::provisioning, true, 12ms, std::nullopt, "cloned the template"});
  report.record_phase({Phase::schema, true, 4ms, std::nullopt, "schema verified"});
  report.record_pool_sample(0, 1);
  report.record_test({"a game is rebuilt from its stream", TestOutcome::passed, 2ms, {}, {}});
  report.record_pool_sample(1, 2);
  TestRecord failed{"scores <b>add up</b> </script><img src=x onerror=alert(1)>",
                    TestOutcome::assertion_failure, 5ms, std::nullopt,
                    "REQUIRE( score == 12 ) with expansion 10 == 12"};
  failed.kind = "assertion";
  failed.failure = {"tests/score_test.cpp", 42, "REQUIRE( score == 12 )", "10 == 12", "", ""};
  failed.database = "sqlite:/tmp/gamebot_test_run/run.db";
  failed.log = {"12:00:00.001 [gamebot warning] replaying stream game-1",
                "12:00:00.002 [gamebot.harness info] snapshot taken"};
  failed.log_dropped = 4;
  failed.rerun = "./game_tests --backend sqlite --isolation transaction 'scores add up'";
  report.record_test(failed);
  report.record_pool_sample(2, 2);
  report.record_test({"the scoreboard survives a dead server", TestOutcome::infrastructure_failure,
                      30ms, FaultClass::connectivity, "infrastructure: connectivity"});
  report.record_test({"snapshots match a replay", TestOutcome::passed, 1ms, {}, {}});
  report.record_pool_sample(0, 2);
  report.record_phase({Phase::teardown, true, 2ms, std::nullopt, "everything removed"});
}

std::string sample_json() {
  RunReport report;
  fill_sample(report);
  return report.to_json();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs argv with stdout and stderr into files; returns the exit status (-1: killed by a signal).
int run(const std::vector<std::string>& argv, const std::filesystem::path& out,
        const std::filesystem::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) FAIL("cannot start " << argv[0] << " (install Debian's chromium package)");
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> chromium(const std::filesystem::path& profile) {
  return {"chromium",
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--user-data-dir=" + profile.string(),
          "--enable-logging=stderr",
          "--v=0"};
}

// The value of the first `attribute="..."` after `from` in `dom`.
std::string attribute_after(const std::string& dom, const std::string& from,
                            const std::string& attribute) {
  const std::size_t at = dom.find(from);
  if (at == std::string::npos) return {};
  const std::size_t start = dom.find(attribute + "=\"", at);
  if (start == std::string::npos) return {};
  const std::size_t value = start + attribute.size() + 2;
  return dom.substr(value, dom.find('"', value) - value);
}

// Whether a polyline's points only move horizontally or vertically (steps, no diagonals).
bool only_steps(const std::string& points) {
  std::istringstream in(points);
  std::string point;
  double last_x = 0, last_y = 0;
  bool first = true;
  std::size_t count = 0;
  while (in >> point) {
    const std::size_t comma = point.find(',');
    if (comma == std::string::npos) return false;
    const double x = std::stod(point.substr(0, comma));
    const double y = std::stod(point.substr(comma + 1));
    if (!first && x != last_x && y != last_y) return false;
    first = false;
    last_x = x;
    last_y = y;
    ++count;
  }
  return count >= 2;
}

// Loads `html` (with `fragment`) in headless Chromium and returns the DOM after its scripts ran;
// `console` receives Chromium's log.
std::string dump_dom(const std::filesystem::path& dir, const std::filesystem::path& html,
                     const std::string& fragment, std::string& console) {
  std::vector<std::string> dump = chromium(dir / "profile");
  dump.push_back("--dump-dom");
  dump.push_back("file://" + html.string() + fragment);
  REQUIRE(run(dump, dir / "dom.html", dir / "console.log") == 0);
  console = read_file(dir / "console.log");
  return read_file(dir / "dom.html");
}

}  // namespace

TEST_CASE("the HTML report embeds the run report with no '<' from the data",
          "[harness][report][html]") {
  const std::string page = render_report_html(sample_json());
  CHECK(page.find("</script><img") == std::string::npos);
  CHECK(page.find("\\u003c/script>\\u003cimg") != std::string::npos);
  CHECK(page.find("\"verdict\": \"infrastructure_failure\"") != std::string::npos);
  CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // no fetches
  CHECK(page.find("https://") == std::string::npos);
}

TEST_CASE(
    "the HTML report loads in headless Chromium without console errors and shows why each test "
    "failed, a stepped pool chart, the tests' span and filters by outcome",
    "[harness][report][html][browser]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path dir_path = temp.path();
  const std::filesystem::path html = dir_path / "report.html";
  {
    std::ofstream out(html, std::ios::binary);
    out << render_report_html(sample_json());
  }
  std::string console;
  const std::string dom = dump_dom(dir_path, html, "", console);
  INFO("chromium's log:\n" << console);
  // No console errors: Chromium's log, and the page's own collector (errors, console.error).
  CHECK(console.find("CONSOLE") == std::string::npos);
  CHECK(console.find("Uncaught") == std::string::npos);
  CHECK(dom.find("data-page-errors=\"0\"") != std::string::npos);
  CHECK(dom.find("data-rendered=\"true\"") != std::string::npos);
  // The script rendered: failing tests in their sections, markup in names shown as text.
  CHECK(dom.find("Rendering the report") == std::string::npos);
  CHECK(dom.find("class=\"failing-test row-assertion_failure\"") != std::string::npos);
  CHECK(dom.find("scores &lt;b&gt;add up&lt;/b&gt; &lt;/script&gt;&lt;img") != std::string::npos);
  CHECK(dom.find("<img src=\"x\"") == std::string::npos);
  CHECK(dom.find("class=\"failing-test row-infrastructure_failure\"") != std::string::npos);
  CHECK(dom.find("the scoreboard survives a dead server") != std::string::npos);
  CHECK(dom.find("Infrastructure failures (1)") != std::string::npos);
  CHECK(dom.find("Assertion failures (1)") != std::string::npos);
  // Why the assertion failure failed, where, on which database, its log and how to rerun it.
  CHECK(dom.find("assertion at tests/score_test.cpp:42") != std::string::npos);
  CHECK(dom.find("REQUIRE( score == 12 )") != std::string::npos);
  CHECK(dom.find("10 == 12") != std::string::npos);
  CHECK(dom.find("sqlite:/tmp/gamebot_test_run/run.db") != std::string::npos);
  CHECK(dom.find("last 2 lines, 4 earlier left out") != std::string::npos);
  CHECK(dom.find("[gamebot.harness info] snapshot taken") != std::string::npos);
  CHECK(dom.find("./game_tests --backend sqlite --isolation transaction 'scores add up'") !=
        std::string::npos);
  // The run's command line and options.
  CHECK(dom.find("./game_tests --backend sqlite --report run.json") != std::string::npos);
  CHECK(dom.find("backend=sqlite isolation=transaction") != std::string::npos);
  // The phase bar holds the span the tests ran in, before teardown.
  const std::size_t tests_segment = dom.find("class=\"phase-tests\"");
  CHECK(tests_segment != std::string::npos);
  CHECK(tests_segment < dom.find("teardown ", tests_segment));
  // The pool chart: steps, labelled axes, the same peak as the samples.
  CHECK(dom.find("id=\"pool-chart\"") != std::string::npos);
  const std::string in_use = attribute_after(dom, "class=\"step-in_use\"", "points");
  const std::string in_use_before = attribute_after(dom, "step-in_use", "points");
  INFO("in use: " << in_use << in_use_before);
  CHECK(only_steps(in_use.empty() ? in_use_before : in_use));
  CHECK(dom.find(">time since the run started<") != std::string::npos);
  CHECK(dom.find(">connections<") != std::string::npos);
  CHECK(dom.find("peak in use 2") != std::string::npos);
  CHECK(dom.find("id=\"phase-timeline\"") != std::string::npos);
  // Filters by outcome: all shown at first.
  CHECK(dom.find("id=\"outcome-filters\"") != std::string::npos);
  CHECK(dom.find("data-outcome-filter=\"all\"") != std::string::npos);

  // #outcome=assertion_failure shows only the assertion failure among the tests.
  const std::string filtered = dump_dom(dir_path, html, "#outcome=assertion_failure", console);
  CHECK(filtered.find("data-outcome-filter=\"assertion_failure\"") != std::string::npos);
  CHECK(filtered.find("data-outcome=\"assertion_failure\">") != std::string::npos);
  CHECK(filtered.find("data-outcome=\"passed\" hidden=\"\"") != std::string::npos);
  CHECK(filtered.find("data-outcome=\"assertion_failure\" hidden") == std::string::npos);

  // The screenshot people look at, of this failing run: kept beside the test binary.
  const std::filesystem::path png = std::filesystem::current_path() / "report-html-screenshot.png";
  std::vector<std::string> shot = chromium(dir_path / "profile");
  shot.push_back("--window-size=1200,2400");
  shot.push_back("--virtual-time-budget=2000");
  shot.push_back("--screenshot=" + png.string());
  shot.push_back("file://" + html.string());
  REQUIRE(run(shot, dir_path / "shot.out", dir_path / "shot.log") == 0);
  CHECK(std::filesystem::file_size(png) > 10'000);
  std::cerr << "screenshot of the failing run's page: " << png.string() << "\n";
}

TEST_CASE("a script error on the HTML report page is caught by the page's error collector",
          "[harness][report][html][browser]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path dir_path = temp.path();
  const std::filesystem::path html = dir_path / "report.html";
  {
    // A test entry the renderer cannot read: its script throws.
    std::ofstream out(html, std::ios::binary);
    out << render_report_html(R"({"tests": [null]})");
  }
  std::string console;
  const std::string dom = dump_dom(dir_path, html, "", console);
  INFO(dom);
  CHECK(dom.find("data-page-errors=\"0\"") == std::string::npos);
  CHECK(dom.find("data-page-errors=\"1\"") != std::string::npos);
  CHECK(dom.find("page error: ") != std::string::npos);
}
