#include "provision/sqlite_provider.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "env/schema_check.hpp"
#include "env/tracking_backend.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/harness/caches.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/sandbox.hpp"
#include "gamebot/repo/sqlite_connection.hpp"
#include "log.hpp"
#include "private_directory.hpp"
#include "provision/repo_settings.hpp"
#include "test_context_state.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness::provision {

namespace {

std::vector<repo::Migration> sqlite_store_migrations() {
  return eventstore::sqlite_event_store_migrations();
}

// sqlite: a new private run directory (see private_directory.hpp) with a marker, the run database
// copied from a template file keyed by the migration hash, and an image copied per test.
struct SqliteProvider final : Provider {
  SqliteProvider(const HarnessOptions& options, const HarnessSetup& setup,
                 const RunIdentity& identity)
      : options_(options), setup_(setup), identity_(identity) {
    store_migrator_.emplace(sqlite_store_migrations(),
                            eventstore::sqlite_event_store_migrator_options());
    if (!setup.app_migrations.empty())
      app_migrator_.emplace(setup.app_migrations, app_migrator_options());
    objects_ = env::objects_created_by(sqlite_store_migrations());
    for (const auto& o : env::objects_created_by(setup.app_migrations)) objects_.push_back(o);
    for (const auto& o : setup.expected_objects) objects_.push_back(o);
    hash_ = store_migrator_->set_hash() + (app_migrator_ ? app_migrator_->set_hash() : "");
    hash_ = repo::Migrator::checksum(hash_).substr(0, 16);
  }

  fs::path base_dir() const {
    if (options_.database_url) {
      const repo::DatabaseUrl& url = *options_.database_url;
      if (!url.sqlite_in_memory() && !url.sqlite_path().empty()) {
        fs::path parent = fs::absolute(url.sqlite_path()).parent_path();
        return parent;
      }
    }
    return caches::temporary_directory();
  }

  void connect(RunReport&) override {
    base_ = base_dir();
    std::error_code ec;
    if (!fs::is_directory(base_, ec)) {
      throw Error(FaultClass::connectivity,
                  "directory " + base_.string() + " for the SQLite run directory does not exist");
    }
    if (::access(base_.c_str(), W_OK) != 0) {
      throw Error(FaultClass::configuration,
                  "directory " + base_.string() + " is not writable by this user");
    }
  }

  void reap() {
    for (const auto& path :
         marked::reap_orphans(base_, kTestDatabasePrefix, "sqlite-run", setup_.orphan_grace))
      detail::log().info("reaped orphaned SQLite run directory {}", path.string());
  }

  // Templates are kept across runs in a per-user private directory beside the run directories.
  // One that is not private (made by someone else, a symlink, a lax mode) is never trusted: the
  // template is then built in the run directory and goes with it.
  fs::path template_path() const {
    const fs::path cache = caches::sqlite_template_cache(base_);
    try {
      detail::ensure_private_directory(cache);
    } catch (const Error& e) {
      detail::log().warn("SQLite template cache: {}; building the template in the run directory",
                         e.message());
      return dir_ / "template.db";
    }
    return cache / ("template-" + hash_ + ".db");
  }

  void build_template(const fs::path& path) {
    const fs::path building = path.string() + ".building." + std::to_string(::getpid());
    fs::remove(building);
    detail::create_private_file(building);
    {
      auto connection = repo::connect(repo::DatabaseUrl::sqlite_file(building.string()));
      connection->execute_batch("PRAGMA journal_mode=DELETE");
      store_migrator_->migrate(*connection);
      if (app_migrator_) app_migrator_->migrate(*connection);
    }
    fs::rename(building, path);
  }

  void provision(RunReport&) override {
    reap();
    dir_ = detail::make_private_directory(base_, test_database_name(identity_) + ".");
    marker_ = RunMarker::for_this_process(identity_.run_id.str(), "sqlite-run");
    marked::mark(dir_, marker_);
    teardown_ = process_teardown().add("remove SQLite run directory " + dir_.string(),
                                       [this] { remove_run_directory(); });
    template_ = template_path();
    cached_ = fs::is_regular_file(fs::symlink_status(template_));
    if (!cached_) build_template(template_);
    fs::copy_file(template_, dir_ / "run.db", fs::copy_options::overwrite_existing);
  }

  void verify_file(const fs::path& db) {
    auto connection = repo::connect(repo::DatabaseUrl::sqlite_file(db.string()));
    auto problems =
        env::schema_problems(*connection, *store_migrator_, app_migrator_, objects_, {});
    if (!problems.empty()) {
      throw Error(FaultClass::schema, "database " + db.string() + " does not match the code:\n" +
                                          env::join_lines(problems));
    }
  }

  void verify() override {
    try {
      verify_file(dir_ / "run.db");
    } catch (const Error& e) {
      if (!cached_ || e.fault() != FaultClass::schema) throw;
      detail::log().warn("cached SQLite template {} failed verification; rebuilding it: {}",
                         template_.string(), e.message());
      fs::remove(template_);
      build_template(template_);
      cached_ = false;
      fs::copy_file(template_, dir_ / "run.db", fs::copy_options::overwrite_existing);
      verify_file(dir_ / "run.db");
    }
    repo::RepoOptions repo_options;
    repo_options.pool = pool_for(setup_.test_threads);
    run_repo_.emplace(
        repo::Repo::open(repo::DatabaseUrl::sqlite_file((dir_ / "run.db").string()), repo_options));
    eventstore::SqliteBackendOptions backend_options;
    backend_options.migrate = false;
    run_backend_ = std::make_shared<eventstore::SqliteBackend>(*run_repo_, backend_options);
    if (options_.isolation == Isolation::database) {
      sqlite3* source = nullptr;
      sqlite3* image = nullptr;
      detail::create_private_file(dir_ / "image.db");
      sqlite3_open_v2((dir_ / "run.db").c_str(), &source, SQLITE_OPEN_READONLY, nullptr);
      sqlite3_open_v2((dir_ / "image.db").c_str(), &image,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
      try {
        copy_database(source, image);
      } catch (...) {
        sqlite3_close(source);
        sqlite3_close(image);
        throw;
      }
      sqlite3_close(source);
      sqlite3_close(image);
    }
  }

  static void copy_database(sqlite3* source, sqlite3* destination) {
    sqlite3_backup* backup = sqlite3_backup_init(destination, "main", source, "main");
    if (!backup) {
      throw Error(FaultClass::provisioning,
                  std::string("sqlite3_backup_init failed: ") + sqlite3_errmsg(destination));
    }
    const int step = sqlite3_backup_step(backup, -1);
    sqlite3_backup_finish(backup);
    if (step != SQLITE_DONE) {
      throw Error(FaultClass::provisioning,
                  std::string("restoring the SQLite image failed: ") + sqlite3_errstr(step));
    }
  }

  void begin(TestContextState& s) override {
    std::shared_ptr<eventstore::Backend> backend;
    switch (options_.isolation) {
      case Isolation::transaction: {
        s.repo = *run_repo_;
        s.dirty_returns_before = run_repo_->pool().stats().dirty_returns;
        repo::SandboxOptions sandbox_options;
        sandbox_options.label = s.name;
        s.sandbox = std::make_unique<repo::Sandbox>(*run_repo_, sandbox_options);
        backend = run_backend_;
        break;
      }
      case Isolation::database: {
        // A copy of the verified run image per test (the SQLite analogue of a template clone),
        // deleted when the test ends.
        const fs::path file = dir_ / ("test_" + std::to_string(++clones_) + ".db");
        fs::copy_file(dir_ / "image.db", file, fs::copy_options::overwrite_existing);
        repo::RepoOptions repo_options;
        repo_options.pool = pool_for(setup_.test_threads);
        repo::Repo fresh =
            repo::Repo::open(repo::DatabaseUrl::sqlite_file(file.string()), repo_options);
        s.release = [file](std::vector<TestLeak>&) {
          std::error_code ec;
          for (const char* suffix : {"", "-wal", "-shm", "-leases"})
            fs::remove(file.string() + suffix, ec);
        };
        eventstore::SqliteBackendOptions backend_options;
        backend_options.migrate = false;
        backend_options.watch_interval = std::chrono::milliseconds(0);
        backend = std::make_shared<eventstore::SqliteBackend>(fresh, backend_options);
        s.repo = fresh;
        break;
      }
      default:
        s.repo = *run_repo_;
        s.dirty_returns_before = run_repo_->pool().stats().dirty_returns;
        backend = run_backend_;
        break;
    }
    s.tracker = std::make_shared<env::TrackingBackend>(backend);
    s.store.emplace(s.tracker);
  }

  void remove_run_directory() {
    run_backend_.reset();
    run_repo_.reset();
    if (dir_.empty()) return;
    if (keep_) return;
    try {
      if (!marked::drop_if_owned(dir_, marked::owned_by_run(marker_.run_id)))  // never touched
        left_.push_back(dir_.string() + ": its marker is no longer this run's, so it was kept");
    } catch (const std::exception& e) {
      left_.push_back(dir_.string() + ": " + e.what());
    }
  }

  TeardownOutcome teardown(bool keep) noexcept override {
    keep_ = keep;
    TeardownOutcome outcome;
    try {
      if (keep && !dir_.empty() && marked::keep(dir_, marked::owned_by_run(marker_.run_id))) {
        outcome.kept.push_back((dir_ / "run.db").string());
        detail::log().warn("kept for inspection: {}", outcome.kept.back());
        detail::log().warn(
            "remove what was kept with: gamebot-store test-dbs reap --kept 'sqlite:{}'",
            base_.string());
      }
    } catch (const std::exception& e) {
      outcome.left.push_back(dir_.string() + ": keeping it failed: " + e.what());
    }
    teardown_.run_now();  // runs remove_run_directory(), or waits for the thread running it
    for (auto& line : left_) outcome.left.push_back(std::move(line));
    left_.clear();
    return outcome;
  }

  std::string run_database() const override { return dir_.string(); }
  std::string migration_hash() const override { return hash_; }
  bool template_cached() const override { return cached_; }

  const HarnessOptions& options_;
  const HarnessSetup& setup_;
  RunIdentity identity_;
  std::optional<repo::Migrator> store_migrator_;
  std::optional<repo::Migrator> app_migrator_;
  std::vector<ExpectedObject> objects_;
  std::string hash_;
  fs::path base_;
  fs::path dir_;
  fs::path template_;
  RunMarker marker_;
  bool cached_ = false;
  bool keep_ = false;
  // What remove_run_directory() could not remove; read by teardown() once run_now() returned.
  std::vector<std::string> left_;
  std::optional<repo::Repo> run_repo_;
  std::shared_ptr<eventstore::SqliteBackend> run_backend_;
  std::atomic<std::uint64_t> clones_{0};
  TeardownHandle teardown_;
};

}  // namespace

std::unique_ptr<Provider> make_sqlite_provider(const HarnessOptions& options,
                                               const HarnessSetup& setup,
                                               const RunIdentity& identity) {
  return std::make_unique<SqliteProvider>(options, setup, identity);
}

}  // namespace gamebot::harness::provision
