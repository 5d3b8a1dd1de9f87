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
  report.record_phase({Phase::preflight, true, 3ms, std::nullopt, "5 types checked"});
  report.record_phase({Phase::connectivity, true, 1ms, std::nullopt, "connected"});
  report.record_phase({Phase::provisioning, true, 12ms, std::nullopt, "cloned the template"});
  report.record_phase({Phase::schema, true, 4ms, std::nullopt, "schema verified"});
  report.record_pool_sample(0, 1);
  report.record_test({"a game is rebuilt from its stream", TestOutcome::passed, 2ms, {}, {}});
  report.record_pool_sample(1, 2);
  report.record_test({"scores <b>add up</b> </script><img src=x onerror=alert(1)>",
                      TestOutcome::assertion_failure, 5ms, std::nullopt, "assertion failed"});
  report.record_pool_sample(2, 2);
  report.record_test({"the scoreboard survives a dead server", TestOutcome::infrastructure_failure,
                      30ms, FaultClass::connectivity, "infrastructure: connectivity"});
  report.record_test({"snapshots match a replay", TestOutcome::passed, 1ms, {}, {}});
  report.record_pool_sample(0, 2);
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
    "the HTML report loads in headless Chromium without console errors and lists the "
    "failing tests",
    "[harness][report][html][browser]") {
  gamebot::testing::TempDir temp;
  const std::filesystem::path dir_path = temp.path();
  const std::filesystem::path html = dir_path / "report.html";
  {
    std::ofstream out(html, std::ios::binary);
    out << render_report_html(sample_json());
  }
  std::vector<std::string> dump = chromium(dir_path / "profile");
  dump.push_back("--dump-dom");
  dump.push_back("file://" + html.string());
  REQUIRE(run(dump, dir_path / "dom.html", dir_path / "console.log") == 0);
  const std::string dom = read_file(dir_path / "dom.html");
  const std::string console = read_file(dir_path / "console.log");
  INFO("chromium's log:\n" << console);
  CHECK(console.find("CONSOLE") == std::string::npos);
  CHECK(console.find("Uncaught") == std::string::npos);
  // The script rendered: failing tests in their sections, markup in names shown as text.
  CHECK(dom.find("Rendering the report") == std::string::npos);
  CHECK(dom.find("class=\"failing-test row-assertion_failure\"") != std::string::npos);
  CHECK(dom.find("scores &lt;b&gt;add up&lt;/b&gt; &lt;/script&gt;&lt;img") != std::string::npos);
  CHECK(dom.find("<img src=\"x\"") == std::string::npos);
  CHECK(dom.find("class=\"failing-test row-infrastructure_failure\"") != std::string::npos);
  CHECK(dom.find("the scoreboard survives a dead server") != std::string::npos);
  CHECK(dom.find("Infrastructure failures (1)") != std::string::npos);
  CHECK(dom.find("Assertion failures (1)") != std::string::npos);
  CHECK(dom.find("id=\"pool-chart\"") != std::string::npos);
  CHECK(dom.find("id=\"phase-timeline\"") != std::string::npos);

  // The screenshot people look at: kept beside the test binary.
  const std::filesystem::path png = std::filesystem::current_path() / "report-html-screenshot.png";
  std::vector<std::string> shot = chromium(dir_path / "profile");
  shot.push_back("--window-size=1200,1400");
  shot.push_back("--screenshot=" + png.string());
  shot.push_back("file://" + html.string());
  REQUIRE(run(shot, dir_path / "shot.out", dir_path / "shot.log") == 0);
  CHECK(std::filesystem::file_size(png) > 10'000);
}
