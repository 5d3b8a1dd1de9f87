#include "gamebot/harness/ephemeral_postgres.hpp"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "child_process.hpp"
#include "gamebot/core/error.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot;
using namespace gamebot::harness;
using gamebot::harness::testing::ChildProcess;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& url) {
  Connection connection(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    throw std::runtime_error("connect failed: " + std::string(PQerrorMessage(connection.get())));
  }
  return connection;
}

// The single value of a one-row query.
std::string query_one(PGconn* connection, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection, sql.c_str()), &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  return PQgetvalue(result.get(), 0, 0);
}

void execute(PGconn* connection, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection, sql.c_str()), &PQclear);
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
}

bool accepts_connections(const std::string& url) {
  Connection connection(PQconnectdb(url.c_str()), &PQfinish);
  return PQstatus(connection.get()) == CONNECTION_OK;
}

std::string socket_url(const fs::path& dir) {
  return "postgresql://postgres@/postgres?host=" + dir.string() + "&port=5432";
}

// A fresh directory under the harness's default base directory (where the
// servers of these tests run), removed at scope exit.
struct ScratchDir {
  fs::path dir;
  explicit ScratchDir(fs::perms mode) {
    std::string pattern =
        (EphemeralPostgres::default_base_dir() / "gamebot-test-").string() + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    fs::permissions(dir, mode, fs::perm_options::replace);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path path() const { return dir; }
};

// A base directory the server's user (nobody, when we are root) can traverse.
struct BaseDir : ScratchDir {
  BaseDir() : ScratchDir(fs::perms(0711)) {}
};

// A private cache directory.
struct CacheDir : ScratchDir {
  CacheDir() : ScratchDir(fs::perms(0700)) {}
};

EphemeralPostgresOptions options_in(const BaseDir& base, const CacheDir& cache) {
  EphemeralPostgresOptions options;
  options.base_dir = base.path();
  options.cache_dir = cache.path();
  return options;
}

fs::path image_in(const fs::path& cache) {
  for (const auto& entry : fs::directory_iterator(cache)) {
    if (entry.path().filename().string().starts_with("image-")) return entry.path();
  }
  return {};
}

}  // namespace

TEST_CASE("an ephemeral server answers on its private socket and stop deletes it",
          "[harness][ephemeral_postgres]") {
  EphemeralPostgres server;
  const fs::path dir = server.directory();
  REQUIRE(server.running());
  struct stat info {};
  REQUIRE(::stat(dir.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);
  CHECK(fs::exists(dir / ".s.PGSQL.5432"));
  CHECK(server.url() == "postgresql://postgres@/postgres?host=" + dir.string() + "&port=5432");

  auto marker = read_marker_file(dir / EphemeralPostgres::kMarkerFile);
  REQUIRE(marker);
  CHECK(marker->pid == static_cast<long>(::getpid()));
  CHECK(marker->resource == "ephemeral-postgres");

  {
    Connection connection = connect(server.url());
    CHECK(query_one(connection.get(), "SELECT 1") == "1");
    CHECK(query_one(connection.get(), "SHOW listen_addresses").empty());  // no TCP
    CHECK(query_one(connection.get(), "SHOW fsync") == "off");
    CHECK(query_one(connection.get(), "SHOW synchronous_commit") == "off");
    CHECK(query_one(connection.get(), "SHOW full_page_writes") == "off");
    CHECK(query_one(connection.get(), "SELECT current_user") == "postgres");
  }
  if (::geteuid() == 0) {
    struct stat data {};
    REQUIRE(::stat(server.data_dir().c_str(), &data) == 0);
    CHECK(data.st_uid == ::getpwnam("nobody")->pw_uid);  // never root
  }
  server.stop();
  CHECK_FALSE(server.running());
  CHECK_FALSE(fs::exists(dir));
  CHECK_FALSE(accepts_connections(socket_url(dir)));
  server.stop();  // idempotent
}

TEST_CASE("the first start runs initdb and caches it, later starts reuse the image",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  CacheDir cache;
  EphemeralPostgresOptions options = options_in(base, cache);
  {
    EphemeralPostgres first(options);
    CHECK_FALSE(first.timings().from_cache);
    CHECK(first.timings().initdb > 0ns);
    CHECK(accepts_connections(first.url()));
  }  // the destructor waits for the spare prepared in the background
  REQUIRE_FALSE(image_in(cache.path()).empty());
  {
    EphemeralPostgres from_spare(options);
    CHECK(from_spare.timings().from_cache);
    CHECK(from_spare.timings().from_spare);
    CHECK(from_spare.timings().initdb == 0ns);
    Connection connection = connect(from_spare.url());
    CHECK(query_one(connection.get(),
                    "SELECT count(*) FROM pg_database WHERE datname = 'postgres'") == "1");
  }
  options.spare_clusters = 0;  // neither take nor make spares: copy the image
  EphemeralPostgres copied(options);
  CHECK(copied.timings().from_cache);
  CHECK_FALSE(copied.timings().from_spare);
  CHECK(copied.timings().copy > 0ns);
  CHECK(accepts_connections(copied.url()));
}

TEST_CASE("a damaged cached image is rebuilt instead of failing every run",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  CacheDir cache;
  EphemeralPostgresOptions options = options_in(base, cache);
  options.spare_clusters = 0;  // the damaged image itself must be started
  const fs::path image = EphemeralPostgres::cached_image_path(options);
  REQUIRE(image.parent_path() == fs::path(cache.path()));
  fs::create_directory(image);  // a cluster without its files, as a crashed copy might leave
  std::ofstream(image / "PG_VERSION") << "15\n";
  EphemeralPostgres server(options);
  CHECK_FALSE(server.timings().from_cache);
  CHECK(server.timings().initdb > 0ns);
  CHECK(accepts_connections(server.url()));
  server.stop();                                       // waits for the background rebuild
  CHECK(fs::exists(image / "global" / "pg_control"));  // the image was rebuilt
}

TEST_CASE("two concurrent ephemeral servers do not collide", "[harness][ephemeral_postgres]") {
  EphemeralPostgres one;
  EphemeralPostgres two;  // the spare, if any, went to `one`
  CHECK(one.directory() != two.directory());
  CHECK(one.url() != two.url());
  Connection a = connect(one.url());
  Connection b = connect(two.url());
  execute(a.get(), "CREATE TABLE only_in_one (id int)");
  CHECK(query_one(a.get(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_one'") ==
        "1");
  CHECK(query_one(b.get(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_one'") ==
        "0");
  a.reset();
  const fs::path first_dir = one.directory();
  one.stop();
  CHECK_FALSE(fs::exists(first_dir));
  CHECK(query_one(b.get(), "SELECT 1") == "1");
}

TEST_CASE("two processes starting with an empty cache both get their own server",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  CacheDir cache;
  // No spares: this is about two first starts meeting on one empty cache.
  ChildProcess first(
      {GAMEBOT_HARNESS_TEST_CHILD, "pg-start", base.path().string(), cache.path().string(), "0"});
  ChildProcess second(
      {GAMEBOT_HARNESS_TEST_CHILD, "pg-start", base.path().string(), cache.path().string(), "0"});
  auto first_line = first.read_line(20s);
  auto second_line = second.read_line(20s);
  REQUIRE(first_line);
  REQUIRE(second_line);
  const fs::path first_dir = first_line->substr(6);
  const fs::path second_dir = second_line->substr(6);
  CHECK(first_dir != second_dir);
  CHECK(accepts_connections(socket_url(first_dir)));
  CHECK(accepts_connections(socket_url(second_dir)));
  first.signal(SIGTERM);
  second.signal(SIGTERM);
  CHECK(WTERMSIG(first.wait()) == SIGTERM);
  CHECK(WTERMSIG(second.wait()) == SIGTERM);
  // SIGTERM ran the teardown: both stopped and deleted.
  CHECK_FALSE(fs::exists(first_dir));
  CHECK_FALSE(fs::exists(second_dir));
  CHECK_FALSE(accepts_connections(socket_url(first_dir)));
}

TEST_CASE("the server of a SIGKILLed owner is reaped, live and unmarked ones are not",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  const fs::path unmarked = base.path() / "gamebot-pg-notours";
  fs::create_directory(unmarked);

  ChildProcess owner({GAMEBOT_HARNESS_TEST_CHILD, "pg-start", base.path().string()});
  auto line = owner.read_line(20s);
  REQUIRE(line);
  const fs::path orphan_dir = line->substr(6);
  owner.signal(SIGKILL);
  int status = owner.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  // The owner died without cleaning up: the server still runs.
  CHECK(fs::exists(orphan_dir));
  CHECK(accepts_connections(socket_url(orphan_dir)));

  EphemeralPostgresOptions options;
  options.base_dir = base.path();
  options.reap_orphans = false;  // the explicit call below does it
  EphemeralPostgres live(options);

  auto reaped = EphemeralPostgres::reap_orphans(base.path());
  REQUIRE(reaped.size() == 1);
  CHECK(reaped.front() == orphan_dir);
  CHECK_FALSE(fs::exists(orphan_dir));
  CHECK_FALSE(accepts_connections(socket_url(orphan_dir)));
  CHECK(fs::exists(unmarked));
  CHECK(accepts_connections(live.url()));
  CHECK(EphemeralPostgres::reap_orphans(base.path()).empty());
}

TEST_CASE("starting a server reaps orphans in its base directory first",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  ChildProcess owner({GAMEBOT_HARNESS_TEST_CHILD, "pg-start", base.path().string()});
  auto line = owner.read_line(20s);
  REQUIRE(line);
  const fs::path orphan_dir = line->substr(6);
  owner.signal(SIGKILL);
  owner.wait();
  REQUIRE(fs::exists(orphan_dir));
  EphemeralPostgresOptions options;
  options.base_dir = base.path();
  EphemeralPostgres server(options);
  CHECK_FALSE(fs::exists(orphan_dir));
  CHECK(accepts_connections(server.url()));
}

TEST_CASE("spare clusters of a vanished cached image are dropped by the reaper",
          "[harness][ephemeral_postgres]") {
  BaseDir base;
  auto spares_in = [&] {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(base.path())) {
      if (entry.path().filename().string().starts_with("gamebot-spares-")) {
        found.push_back(entry.path());
      }
    }
    return found;
  };
  {
    CacheDir cache;
    EphemeralPostgres server(options_in(base, cache));
    server.stop();  // waits for the image and the spare built in the background
    REQUIRE(spares_in().size() == 1);
    CHECK(EphemeralPostgres::reap_orphans(base.path()).empty());  // its image still exists
  }  // the cache directory, and with it the image, is gone
  auto reaped = EphemeralPostgres::reap_orphans(base.path());
  CHECK(reaped.size() == 1);
  CHECK(spares_in().empty());
}

TEST_CASE("missing server binaries are a configuration error naming the package",
          "[harness][ephemeral_postgres]") {
  gamebot::testing::TempDir empty_bindir;
  EphemeralPostgresOptions options;
  options.bindir = empty_bindir.path();
  try {
    EphemeralPostgres server(options);
    FAIL("expected a configuration error");
  } catch (const Error& e) {
    CHECK(e.fault() == FaultClass::configuration);
    CHECK_THAT(e.message(), Catch::Contains("'postgresql'") && Catch::Contains("initdb"));
  }
}

TEST_CASE("a base directory the server's user cannot enter is refused up front",
          "[harness][ephemeral_postgres]") {
  CacheDir private_base;  // 0700, owned by us
  EphemeralPostgresOptions options;
  options.base_dir = private_base.path();
  if (::geteuid() == 0) {
    // The server runs as nobody, who cannot enter a root-only directory.
    try {
      EphemeralPostgres server(options);
      FAIL("expected a configuration error");
    } catch (const Error& e) {
      CHECK(e.fault() == FaultClass::configuration);
      CHECK_THAT(e.message(),
                 Catch::Contains("nobody") && Catch::Contains(private_base.path().string()));
    }
    CHECK(fs::is_empty(private_base.path()));  // nothing left behind
  } else {
    // The server runs as us: our own private directory is fine.
    EphemeralPostgres server(options);
    CHECK(accepts_connections(server.url()));
  }
}

TEST_CASE("a cache directory others can read is not used", "[harness][ephemeral_postgres]") {
  BaseDir base;
  ScratchDir cache(fs::perms(0755));  // ours, but not private: a cluster image would be readable
  EphemeralPostgresOptions options;
  options.base_dir = base.path();
  options.cache_dir = cache.path();
  {
    EphemeralPostgres first(options);
    CHECK(accepts_connections(first.url()));
  }  // the destructor waits for the background work (which would store the image)
  CHECK(fs::is_empty(cache.path()));
  EphemeralPostgres second(options);
  CHECK_FALSE(second.timings().from_cache);
  CHECK(accepts_connections(second.url()));
}
