// Private files of the SQLite harness: a template or run directory another user could have
// planted is never used, and what a run leaves behind is readable by this user only.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness;
using gamebot::eventstore::EventData;
using gamebot::eventstore::ExpectedVersion;

namespace {

constexpr uid_t kNobody = 65534;

HarnessOptions sqlite_options(const fs::path& dir, Isolation isolation) {
  HarnessOptions options;
  options.backend = Backend::sqlite;
  options.isolation = isolation;
  options.database_url = gamebot::repo::DatabaseUrl::sqlite_file((dir / "app.db").string());
  options.log_level = LogLevel::off;
  return options;
}

// Writes at `path` what another user could plant: a copy of a genuine template (so it passes
// schema verification) with a trigger that rewrites the type of every appended event. Returns
// the migration hash the template is for.
std::string plant_rewriting_template(const fs::path& path) {
  gamebot::testing::TempDir probe_dir;
  DatabaseManager probe(sqlite_options(probe_dir.path(), Isolation::none), {});
  probe.start();
  {
    auto genuine = gamebot::repo::connect(gamebot::repo::DatabaseUrl::sqlite_file(
        (fs::path(probe.run_database()) / "run.db").string()));
    genuine->execute_batch("VACUUM INTO '" + path.string() + "'");
  }
  auto planted = gamebot::repo::connect(gamebot::repo::DatabaseUrl::sqlite_file(path.string()));
  planted->execute_batch(
      "CREATE TRIGGER rewrite AFTER INSERT ON eventstore_events BEGIN "
      "UPDATE eventstore_events SET type = 'rewritten' WHERE position = NEW.position; END");
  return probe.migration_hash();
}

// The type an event appended by a test of `environment` reads back with.
std::string type_read_back(DatabaseManager& environment) {
  TestContext test = environment.begin_test("appends");
  EventData data;
  data.type = "original";
  data.data = "{}";
  test.store().append("s", ExpectedVersion::any(), data);
  auto read = test.store().read_stream_forward("s");
  REQUIRE(read.ok());
  REQUIRE(read.events.size() == 1);
  return std::string(read.events[0].type);
}

fs::path cache_directory(const fs::path& base) {
  return base / ("gamebot-sqlite-cache-" + std::to_string(::geteuid()));
}

mode_t permission_bits(const fs::path& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

uid_t owner_of(const fs::path& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info.st_uid;
}

// Sets an environment variable for the scope.
class ScopedVariable {
 public:
  ScopedVariable(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedVariable() { ::unsetenv(name_.c_str()); }
  ScopedVariable(const ScopedVariable&) = delete;
  ScopedVariable& operator=(const ScopedVariable&) = delete;

 private:
  std::string name_;
};

}  // namespace

TEST_CASE("sqlite: a template planted at the old predictable path is not used",
          "[harness][sqlite][private_files]") {
  gamebot::testing::TempDir dir;
  const fs::path scratch = fs::path(dir.path()) / "scratch.db";
  const std::string hash = plant_rewriting_template(scratch);
  const fs::path planted = fs::path(dir.path()) / ("gamebot_sqlite_template_" +
                                                   std::to_string(::getuid()) + "_" + hash + ".db");
  fs::rename(scratch, planted);
  DatabaseManager environment(sqlite_options(dir.path(), Isolation::transaction), {});
  environment.start();
  CHECK_FALSE(environment.template_was_cached());
  CHECK(type_read_back(environment) == "original");
}

TEST_CASE("sqlite: a template cache directory that is not private to us is not used",
          "[harness][sqlite][private_files]") {
  gamebot::testing::TempDir dir;
  const fs::path cache = cache_directory(dir.path());
  std::string hash;
  SECTION("a directory of another user") {
    // As root we can make what another user would; as anyone else there is no such directory.
    if (::geteuid() != 0) return;
    fs::create_directory(cache);
    fs::permissions(cache, fs::perms::owner_all, fs::perm_options::replace);
    hash = plant_rewriting_template(cache / "scratch.db");
    REQUIRE(::chown(cache.c_str(), kNobody, kNobody) == 0);
  }
  SECTION("a directory others can write") {
    fs::create_directory(cache);
    fs::permissions(cache, fs::perms::all, fs::perm_options::replace);
    hash = plant_rewriting_template(cache / "scratch.db");
  }
  SECTION("a directory others can read") {
    fs::create_directory(cache);
    fs::permissions(cache, fs::perms(0755), fs::perm_options::replace);
    hash = plant_rewriting_template(cache / "scratch.db");
  }
  SECTION("a symbolic link to a private directory") {
    const fs::path target = fs::path(dir.path()) / "elsewhere";
    fs::create_directory(target);
    fs::permissions(target, fs::perms::owner_all, fs::perm_options::replace);
    fs::create_directory_symlink(target, cache);
    hash = plant_rewriting_template(cache / "scratch.db");
  }
  const fs::path planted = cache / ("template-" + hash + ".db");
  fs::rename(cache / "scratch.db", planted);
  const mode_t mode_before = permission_bits(cache);
  const uid_t owner_before = owner_of(cache);

  DatabaseManager environment(sqlite_options(dir.path(), Isolation::transaction), {});
  environment.start();
  CHECK_FALSE(environment.template_was_cached());
  CHECK(type_read_back(environment) == "original");
  environment.finish();
  CHECK(permission_bits(cache) == mode_before);  // refused, not repaired
  CHECK(owner_of(cache) == owner_before);
  CHECK(fs::exists(planted));
}

TEST_CASE("sqlite: the template cache and the run directory are private to this user",
          "[harness][sqlite][private_files]") {
  gamebot::testing::TempDir dir;
  DatabaseManager environment(sqlite_options(dir.path(), Isolation::database), {});
  environment.start();
  const fs::path run = environment.run_database();
  const std::string hash = environment.migration_hash();
  {
    TestContext test = environment.begin_test("writes");
    EventData data;
    data.type = "thing_happened";
    data.data = "{}";
    test.store().append("s", ExpectedVersion::any(), data);
    CHECK(permission_bits(run) == 0700);
    std::size_t databases = 0;
    for (const auto& entry : fs::directory_iterator(run)) {
      if (entry.path().extension() != ".db") continue;
      ++databases;
      INFO(entry.path().string());
      CHECK(permission_bits(entry.path()) == 0600);
    }
    CHECK(databases >= 3);  // the run database, its image and the test's copy
  }
  environment.finish();

  const fs::path cache = cache_directory(dir.path());
  CHECK(permission_bits(cache) == 0700);
  CHECK(owner_of(cache) == ::geteuid());
  const fs::path template_file = cache / ("template-" + hash + ".db");
  REQUIRE(fs::is_regular_file(fs::symlink_status(template_file)));
  CHECK(permission_bits(template_file) == 0600);
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path().string());
    CHECK((permission_bits(entry.path()) & 077) == 0);  // nothing readable left beside it
  }
}

TEST_CASE("sqlite: an existing directory at the run directory's path is not taken",
          "[harness][sqlite][private_files]") {
  gamebot::testing::TempDir dir;
  const RunId run_id = RunId::generate();
  ScopedVariable shared_run(std::string(kEnvRunId), run_id.str());
  ScopedVariable worker(std::string(kEnvWorker), "one");
  const fs::path planted = fs::path(dir.path()) / test_database_name({run_id, "one", true});
  fs::create_directory(planted);
  fs::permissions(planted, fs::perms::all, fs::perm_options::replace);
  std::ofstream(planted / "run.db") << "planted";
  if (::geteuid() == 0) REQUIRE(::chown(planted.c_str(), kNobody, kNobody) == 0);
  const mode_t mode_before = permission_bits(planted);
  const uid_t owner_before = owner_of(planted);

  DatabaseManager environment(sqlite_options(dir.path(), Isolation::transaction), {});
  environment.start();
  const fs::path run = environment.run_database();
  CHECK(run != planted);
  CHECK(run.parent_path() == planted.parent_path());
  CHECK(permission_bits(run) == 0700);
  CHECK(type_read_back(environment) == "original");
  environment.finish();
  CHECK_FALSE(fs::exists(run));
  CHECK(permission_bits(planted) == mode_before);
  CHECK(owner_of(planted) == owner_before);
  std::ifstream planted_file(planted / "run.db");
  std::string content;
  std::getline(planted_file, content);
  CHECK(content == "planted");
  CHECK_FALSE(fs::exists(planted / "gamebot-run-marker"));
}
