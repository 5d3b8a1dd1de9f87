// Security guardrails, checked on whole harness runs (the harness's Catch2 child binary from
// tests/harness run as a child process): the password never appears in anything a run wrote,
// run directories are private, and an unmarked database is never touched even when its name
// carries the test prefix.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the harness child with `args` and extra environment entries, stdout and stderr into
// `output`; returns its exit code.
int run_child(const std::vector<std::string>& args, const std::vector<std::string>& env,
              const fs::path& output) {
  std::vector<std::string> argv{GAMEBOT_HARNESS_CATCH2_CHILD};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> argp;
  for (std::string& a : argv) argp.push_back(a.data());
  argp.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string password() {
  return read_file(fs::path(gamebot::testing::postgres_socket_dir()) / "password");
}

}  // namespace

TEST_CASE("a run with a password never shows it in its output, log or report",
          "[reliability][security][postgres]") {
  gamebot::testing::TempDir temp;
  const fs::path dir = temp.path();
  std::string secret = password();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  REQUIRE(secret.size() >= 8);
  const std::string url = gamebot::testing::postgres_password_url(secret);
  REQUIRE(url.find(secret) != std::string::npos);
  // Through the environment, as CI would pass a secret; debug logging for the most text.
  const int code = run_child({"--report", (dir / "report.json").string(), "[child]"},
                             {"GAMEBOT_TEST_DATABASE_URL=" + url, "GAMEBOT_TEST_LOG_LEVEL=debug"},
                             dir / "output.txt");
  const std::string output = read_file(dir / "output.txt");
  INFO(output);
  CHECK(code == 0);
  const std::string report = read_file(dir / "report.json");
  CHECK(report.find("\"verdict\": \"passed\"") != std::string::npos);
  CHECK(output.find("gamebot_pw") != std::string::npos);  // the user is named...
  CHECK(output.find(secret) == std::string::npos);        // ...its password never
  CHECK(report.find(secret) == std::string::npos);
}

TEST_CASE("sqlite run directories are created private to their owner",
          "[reliability][security][sqlite]") {
  gamebot::testing::TempDir temp;
  const fs::path dir = temp.path();
  const int code = run_child({"--backend", "sqlite", "--keep", "[child]"},
                             {"TMPDIR=" + dir.string()}, dir / "output.txt");
  INFO(read_file(dir / "output.txt"));
  CHECK(code == 0);
  std::size_t checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    if (entry.path().filename().string().rfind("gamebot_test_", 0) != 0) continue;
    struct stat info {};
    REQUIRE(::stat(entry.path().c_str(), &info) == 0);
    INFO(entry.path());
    CHECK((info.st_mode & 0777) == 0700);
    ++checked;
  }
  CHECK(checked >= 1);
}

TEST_CASE("an unmarked database named like a run database is never dropped or migrated",
          "[reliability][security][postgres]") {
  // The shape of a harness run's database, from a run long dead - but without the marker.
  const std::string name = "gamebot_test_19990101t000000_p1_0000dead";
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  admin->execute("DROP DATABASE IF EXISTS " + name);
  admin->execute("CREATE DATABASE " + name);
  {
    auto db = gamebot::repo::connect(gamebot::testing::postgres_url(name));
    db->execute("CREATE TABLE keep_me (x int)");
    db->execute("INSERT INTO keep_me VALUES (7)");
  }
  gamebot::testing::TempDir temp;
  const fs::path dir = temp.path();
  // A full run (its start reaps orphans) pointed at that very database.
  const int code = run_child({"--database-url", gamebot::testing::postgres_url(name), "[child]"},
                             {}, dir / "output.txt");
  INFO(read_file(dir / "output.txt"));
  CHECK(code == 0);
  auto db = gamebot::repo::connect(gamebot::testing::postgres_url(name));
  CHECK(db->query_value<std::int64_t>("SELECT x FROM keep_me") == 7);
  CHECK(db->query_value<std::int64_t>(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'gamebot%'") == 0);
  CHECK(db->query_value<std::int64_t>("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                      "'public' AND tablename <> 'keep_me'") == 0);
  db.reset();
  admin->execute("DROP DATABASE " + name);
}
