// `gamebot-store cache list|clear`: the harness's caches a run leaves (the SQLite template cache,
// the private server's cluster image) are listed with path, size and what they are, and cleared;
// a look-alike that is not this user's private directory is neither listed nor removed.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness::testing;

namespace {

// The line of `output` that starts with `path`; empty when none does.
std::string line_of(const std::string& output, const std::string& path) {
  std::size_t start = 0;
  while (start < output.size()) {
    const std::size_t end = std::min(output.find('\n', start), output.size());
    const std::string line = output.substr(start, end - start);
    if (line.rfind(path + " ", 0) == 0) return line;
    start = end + 1;
  }
  return {};
}

}  // namespace

TEST_CASE("cache list and clear show and remove the harness's caches, nothing else",
          "[harness][sqlite][postgres][cache]") {
  gamebot::testing::TempDir dir;
  gamebot::testing::TempDir other;
  // The private server runs as an unprivileged user when we are root: it must reach its directory.
  fs::permissions(dir.path(), fs::perms::others_exec | fs::perms::group_exec,
                  fs::perm_options::add);
  const std::string xdg = dir.path() + "/xdg";
  fs::create_directories(xdg);
  const std::vector<std::string> env{"TMPDIR=" + dir.path(), "XDG_CACHE_HOME=" + xdg};
  const std::string uid = std::to_string(::geteuid());

  REQUIRE(run("", {"--backend", "sqlite", "[child]"}, env).exit_code() == 0);
  REQUIRE(
      run("", {"--backend", "postgres", "[child]"}, env, std::chrono::seconds(120)).exit_code() ==
      0);
  const std::string sqlite_cache = dir.path() + "/gamebot-sqlite-cache-" + uid;
  REQUIRE(fs::is_directory(sqlite_cache));
  // A look-alike of another kind: group- and world-readable, so not the harness's.
  const std::string planted = other.path() + "/gamebot-sqlite-cache-" + uid;
  fs::create_directory(planted);
  fs::permissions(planted, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);

  auto listed = run_folded(GAMEBOT_STORE_CLI, {"cache", "list", "--dir", other.path()}, env);
  INFO(listed.output);
  CHECK(listed.exit_code() == 0);
  CHECK_THAT(line_of(listed.output, sqlite_cache), Catch::Contains("SQLite template cache"));
  CHECK_THAT(line_of(listed.output, sqlite_cache), Catch::Contains("KiB"));
  CHECK_THAT(listed.output, Catch::Contains(xdg + "/gamebot/pg-"));
  CHECK_THAT(listed.output, Catch::Contains("PostgreSQL cluster image cache"));
  CHECK_THAT(line_of(listed.output, dir.path() + "/gamebot-pool-hints-" + uid),
             Catch::Contains("PostgreSQL pooled database hints"));
  CHECK(line_of(listed.output, planted).empty());

  auto cleared = run_folded(GAMEBOT_STORE_CLI, {"cache", "clear", "--dir", other.path()}, env);
  INFO(cleared.output);
  CHECK(cleared.exit_code() == 0);
  CHECK_FALSE(fs::exists(sqlite_cache));
  CHECK(fs::is_empty(xdg + "/gamebot"));
  CHECK(fs::is_directory(planted));
  CHECK_THAT(run_folded(GAMEBOT_STORE_CLI, {"cache", "list"}, env).output,
             Catch::Contains("0 found"));
}
