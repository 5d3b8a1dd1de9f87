#include "gamebot/harness/test_environment.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "env/schema_check.hpp"
#include "env/tracking_backend.hpp"
#include "gamebot/eventstore/memory_backend.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/retry.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/sandbox.hpp"
#include "gamebot/repo/sqlite_connection.hpp"
#include "log.hpp"
#include "private_directory.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness {

namespace {

std::string phase_screen(Phase phase, FaultClass fault, const std::string& diagnosis) {
  return "gamebot harness: phase " + std::string(to_string(phase)) + " failed (" +
         std::string(gamebot::to_string(fault)) + "); no test was run.\n" + diagnosis;
}

// A string literal for utility statements that take no parameters (COMMENT ON).
std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

PhaseFailure::PhaseFailure(Phase phase, FaultClass fault, const std::string& diagnosis)
    : Error(fault, phase_screen(phase, fault, diagnosis)), phase_(phase) {}

// ---- per-test state ---------------------------------------------------------

struct TestContextState {
  std::string name;
  std::optional<repo::ScopedCheckoutLabel> label;
  std::shared_ptr<env::TrackingBackend> tracker;
  std::optional<eventstore::EventStore> store;
  std::optional<repo::Repo> repo;
  std::unique_ptr<repo::Sandbox> sandbox;
  std::exception_ptr setup_error;
  std::optional<FaultClass> setup_fault;
  std::uint64_t dirty_returns_before = 0;
  std::vector<std::uint64_t> held_at_begin;  // connections checked out before the test began
  RunReport* report = nullptr;  // where the pool's use is sampled as the test begins and ends
  std::function<void(std::vector<TestLeak>&)> release;  // strategy cleanup, after leak checks
  std::function<void()> left;  // tells the environment the test reached its end (safe point)
  bool ended = false;

  void rethrow_setup() const {
    if (setup_error) std::rethrow_exception(setup_error);
  }
};

TestContext::TestContext() noexcept = default;
TestContext::TestContext(std::unique_ptr<TestContextState> state) noexcept
    : state_(std::move(state)) {}
TestContext::TestContext(TestContext&&) noexcept = default;
TestContext& TestContext::operator=(TestContext&& other) noexcept {
  if (this != &other) {
    end();
    state_ = std::move(other.state_);
  }
  return *this;
}
TestContext::~TestContext() {
  for (const TestLeak& leak : end())
    detail::log().error("test '{}' leaked: {}", state_ ? state_->name : "", leak.what);
}

const std::string& TestContext::name() const {
  static const std::string empty;
  return state_ ? state_->name : empty;
}

eventstore::EventStore& TestContext::store() {
  if (!state_) throw Error(FaultClass::internal, "TestContext is empty");
  state_->rethrow_setup();
  return *state_->store;
}

const repo::Repo& TestContext::repo() {
  if (!state_) throw Error(FaultClass::internal, "TestContext is empty");
  state_->rethrow_setup();
  if (!state_->repo) {
    throw Error(FaultClass::configuration,
                "the memory backend has no SQL database unless the setup has app_migrations: "
                "add them, or run with --backend sqlite or postgres");
  }
  return *state_->repo;
}

repo::Sandbox* TestContext::sandbox() {
  return state_ ? state_->sandbox.get() : nullptr;
}

std::optional<FaultClass> TestContext::setup_fault() const {
  return state_ ? state_->setup_fault : std::nullopt;
}

namespace {

// A leak is charged to the one test that made it, and taken back before the next test: what
// this test's thread still holds is reclaimed (an open transaction rolled back), so later tests
// start clean. A connection another thread took during the test is reported, not taken back
// (that thread may still use it); one held before the test began is not this test's.
void check_pool(TestContextState& s, std::vector<TestLeak>& leaks) noexcept {
  try {
    repo::Pool& pool = s.repo->pool();
    if (s.report != nullptr) {
      const repo::PoolStats stats = pool.stats();
      s.report->record_pool_sample(stats.in_use, stats.size);
    }
    for (const repo::ReclaimedConnection& taken :
         pool.reclaim_held_by(std::this_thread::get_id())) {
      std::string what = "connection checked out by " + taken.holder.to_string() +
                         " was never returned (the harness took it back)";
      if (taken.open_transaction) {
        what += "; a transaction begun on it was never committed or rolled back (" +
                std::string(taken.rolled_back ? "rolled back" : "the rollback failed") + ")";
      }
      leaks.push_back({std::move(what)});
    }
    for (const repo::CheckoutInfo& holder : pool.checked_out()) {
      if (std::find(s.held_at_begin.begin(), s.held_at_begin.end(), holder.connection_id) !=
          s.held_at_begin.end())
        continue;
      leaks.push_back({"connection still checked out by another thread: " + holder.to_string()});
    }
    const std::uint64_t dirty = pool.stats().dirty_returns;
    if (dirty > s.dirty_returns_before) {
      leaks.push_back({std::to_string(dirty - s.dirty_returns_before) +
                       " connection(s) came back with a transaction left open outside the "
                       "sandbox (rolled back)"});
    }
  } catch (const std::exception& e) {
    leaks.push_back({std::string("checking the test's connections failed: ") + e.what()});
  }
}

}  // namespace

std::vector<TestLeak> TestContext::end() noexcept {
  std::vector<TestLeak> leaks;
  if (!state_ || state_->ended) return leaks;
  TestContextState& s = *state_;
  s.ended = true;
  try {
    if (s.tracker) {
      for (const auto& held : s.tracker->held()) {
        leaks.push_back({"persistent subscription '" + held.subscription + "' on '" +
                         held.stream_id + "' is still subscribed (close it before the test ends)"});
      }
    }
    s.store.reset();
  } catch (const std::exception& e) {
    leaks.push_back({std::string("ending the test failed: ") + e.what()});
  }
  try {
    if (s.sandbox) s.sandbox->close();
  } catch (const std::exception& e) {
    leaks.push_back({std::string("closing the test's sandbox failed: ") + e.what()});
  }
  s.sandbox.reset();
  if (s.repo && !s.setup_error) check_pool(s, leaks);
  // The test's handles go before the release, so what the strategy drops (a clone, a file) is
  // no longer in use by them.
  s.repo.reset();
  s.tracker.reset();
  try {
    if (s.release) s.release(leaks);
  } catch (const std::exception& e) {
    leaks.push_back({std::string("releasing the test's isolation failed: ") + e.what()});
  }
  s.label.reset();
  if (auto left = std::exchange(s.left, nullptr)) left();
  return leaks;
}

// ---- providers ----------------------------------------------------------------

namespace {

struct Provider {
  virtual ~Provider() = default;
  virtual void connect(RunReport&) {}
  virtual void provision(RunReport&) {}
  virtual void verify() {}
  virtual void begin(TestContextState& state) = 0;
  virtual void teardown(bool keep, std::vector<std::string>& kept) noexcept = 0;
  // Called on the signal watcher while tests may run: make their database waits end (without
  // touching objects those threads use). Thread-safe; noexcept (failures are logged).
  virtual void cancel_in_flight() noexcept {}
  virtual std::string run_database() const { return {}; }
  virtual std::string migration_hash() const { return {}; }
  virtual bool template_cached() const { return false; }
};

repo::MigratorOptions app_migrator_options(std::string schema = {}) {
  repo::MigratorOptions options;
  options.table = "gamebot_app_migrations";
  options.schema = std::move(schema);
  return options;
}

// memory: one backend for the run, reset after each test. When the application has tables,
// each test also gets a private in-memory SQLite repo with them, so a suite that uses repo()
// runs unchanged on every backend.
struct MemoryProvider final : Provider {
  MemoryProvider(Isolation isolation, const HarnessSetup& setup)
      : isolation_(isolation), app_migrations_(setup.app_migrations) {}
  void begin(TestContextState& s) override {
    s.tracker = std::make_shared<env::TrackingBackend>(backend_);
    s.store.emplace(s.tracker);
    if (!app_migrations_.empty()) {
      // One connection held open for the test: an in-memory database lives as long as it.
      repo::RepoOptions options;
      options.pool.min_size = 1;
      options.pool.max_size = 1;
      options.pool.max_lifetime = std::chrono::milliseconds(0);
      s.repo.emplace(repo::Repo::open("sqlite::memory:", options));
      s.repo->run([&](repo::Connection& connection) {
        repo::Migrator(app_migrations_, app_migrator_options()).migrate(connection);
      });
    }
    if (isolation_ != Isolation::none)
      s.release = [backend = backend_](std::vector<TestLeak>&) { backend->reset(); };
  }
  void teardown(bool, std::vector<std::string>&) noexcept override { backend_->reset(); }

  Isolation isolation_;
  std::vector<repo::Migration> app_migrations_;
  std::shared_ptr<eventstore::MemoryBackend> backend_ =
      std::make_shared<eventstore::MemoryBackend>();
};

std::vector<repo::Migration> sqlite_store_migrations() {
  return eventstore::sqlite_event_store_migrations();
}

// One line per problem of a database against the expected migrations and objects.
std::vector<std::string> schema_problems(repo::Connection& connection,
                                         const repo::Migrator& store_migrator,
                                         const std::optional<repo::Migrator>& app_migrator,
                                         const std::vector<ExpectedObject>& objects,
                                         const std::string& schema) {
  std::vector<std::string> problems;
  auto add_report = [&](const repo::VerifyReport& report, std::string_view what) {
    for (const auto& p : report.pending)
      problems.push_back(std::string(what) + " migration " + p + " is not applied");
    for (const auto& p : report.problems) problems.push_back(std::string(what) + ": " + p);
  };
  add_report(store_migrator.verify(connection), "event store");
  if (app_migrator) add_report(app_migrator->verify(connection), "application");
  for (auto& line : env::missing_objects(connection, objects, schema)) problems.push_back(line);
  return problems;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "  - " + line + "\n";
  return out;
}

repo::PoolOptions pool_for(std::size_t threads) {
  repo::PoolOptions pool;
  pool.max_size = std::max<std::size_t>(2, threads + 1);
  pool.checkout_timeout = std::chrono::milliseconds(5000);
  return pool;
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
    const char* tmp = std::getenv("TMPDIR");
    return tmp && *tmp ? fs::path(tmp) : fs::path("/tmp");
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
    const fs::path cache =
        base_ / ("gamebot-sqlite-cache-" + std::to_string(static_cast<unsigned long>(::geteuid())));
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
    auto problems = schema_problems(*connection, *store_migrator_, app_migrator_, objects_, {});
    if (!problems.empty()) {
      throw Error(FaultClass::schema,
                  "database " + db.string() + " does not match the code:\n" + join_lines(problems));
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
    marked::drop_if_owned(dir_, marked::owned_by_run(marker_.run_id));  // not ours: never touched
  }

  void teardown(bool keep, std::vector<std::string>& kept) noexcept override {
    keep_ = keep;
    try {
      if (keep && !dir_.empty()) kept.push_back(dir_.string());
      teardown_.run_now();
    } catch (const std::exception& e) {
      detail::log().error("SQLite teardown: {}", e.what());
    }
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
  std::optional<repo::Repo> run_repo_;
  std::shared_ptr<eventstore::SqliteBackend> run_backend_;
  std::atomic<std::uint64_t> clones_{0};
  TeardownHandle teardown_;
};

#include "env/postgres_provider.inc"

}  // namespace

// ---- the environment ------------------------------------------------------------

// How long a stop request waits for the tests in progress to reach their end after their
// database work was cancelled (see test_environment.hpp).
constexpr std::chrono::seconds kStopGrace{10};

enum class RunState { open, stopping, finished };

struct TestEnvironment::Impl {
  HarnessOptions options;
  HarnessSetup setup;
  RunIdentity identity;
  RunReport report;
  std::unique_ptr<Provider> provider;
  bool started = false;
  std::vector<std::string> kept;
  std::atomic<bool> circuit_open{false};
  TeardownHandle teardown;
  TeardownHandle stop_request;

  // The lifecycle (see the header); guarded by `mutex`.
  std::mutex mutex;
  std::condition_variable idle;  // `starting` ended or `tests` dropped to 0
  RunState state = RunState::open;
  bool starting = false;   // start() is running its phases
  std::size_t tests = 0;   // tests between begin_test() and their end()
  bool abandoned = false;  // a stop went ahead while work was still in progress

  // Enters owner work that uses the provider; false once a stop was requested.
  bool enter_test() {
    std::lock_guard lock(mutex);
    if (state != RunState::open) return false;
    ++tests;
    return true;
  }
  void leave_test() {
    std::lock_guard lock(mutex);
    --tests;
    idle.notify_all();
  }
  void leave_start() {
    std::lock_guard lock(mutex);
    starting = false;
    idle.notify_all();
  }
  bool stopping() {
    std::lock_guard lock(mutex);
    return state != RunState::open;
  }
};

TestEnvironment::TestEnvironment(HarnessOptions options, HarnessSetup setup)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->setup = std::move(setup);
  impl_->identity = detect_run_identity(process_environment());
  set_log_level(impl_->options.log_level);
  impl_->report.set_run_id(impl_->identity.run_id.str());
  impl_->report.set_backend(impl_->options.backend);
  impl_->report.set_isolation(impl_->options.isolation);
}

TestEnvironment::~TestEnvironment() {
  finish();
}

bool TestEnvironment::started() const noexcept {
  return impl_->started;
}
RunReport& TestEnvironment::report() noexcept {
  return impl_->report;
}
const HarnessOptions& TestEnvironment::options() const noexcept {
  return impl_->options;
}
std::string TestEnvironment::run_database() const {
  return impl_->provider ? impl_->provider->run_database() : std::string();
}
std::vector<std::string> TestEnvironment::kept() const {
  return impl_->kept;
}
std::string TestEnvironment::migration_hash() const {
  return impl_->provider ? impl_->provider->migration_hash() : std::string();
}
bool TestEnvironment::template_was_cached() const noexcept {
  return impl_->provider && impl_->provider->template_cached();
}

void TestEnvironment::start() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.started || s.starting)
      throw Error(FaultClass::internal, "TestEnvironment::start() called twice");
    if (s.state != RunState::open)
      throw PhaseFailure(Phase::preflight, FaultClass::internal,
                         "the run was stopped before it started");
    s.starting = true;
  }
  try {
    // The stop request first: once the hooks are in, a signal must find it.
    s.stop_request = stop_requests().add("stop the test environment", [this] { request_stop(); });
    install_process_teardown_hooks();
    s.teardown = process_teardown().add("gamebot test environment", [this] { finish_now(); });
    run_phases();
  } catch (...) {
    s.leave_start();
    finish();
    throw;
  }
  s.started = true;
  s.leave_start();
}

void TestEnvironment::run_phases() {
  Impl& s = *impl_;
  auto run_phase = [&](Phase phase, const std::function<std::string()>& body) {
    // A stop requested during an earlier phase ends start() at this safe point.
    if (s.stopping())
      throw PhaseFailure(phase, FaultClass::internal, "the run was stopped by a signal");
    PhaseTimer timer(s.report, phase);
    try {
      timer.succeed(body());
    } catch (const PhaseFailure& failure) {
      timer.fail(failure);
      throw;
    } catch (const Error& error) {
      timer.fail(error);
      throw PhaseFailure(phase, error.fault(), error.message());
    } catch (const std::exception& error) {
      Error wrapped(FaultClass::internal, error.what());
      timer.fail(wrapped);
      throw PhaseFailure(phase, FaultClass::internal, error.what());
    }
  };

  run_phase(Phase::preflight, [&]() -> std::string {
    if (s.setup.registry.empty()) return "no event types registered";
    auto report = serializers::run_conformance(s.setup.registry, s.setup.conformance);
    if (!report.passed()) {
      throw Error(FaultClass::serialization, "the serializer conformance suite failed (" +
                                                 std::to_string(report.failed_count()) +
                                                 " type/codec entries); no database "
                                                 "was touched:\n" +
                                                 report.to_string(30));
    }
    return std::to_string(report.entries.size()) + " type/codec entries conform";
  });

  std::unique_ptr<Provider> provider;
  switch (s.options.backend) {
    case Backend::memory:
      provider = std::make_unique<MemoryProvider>(s.options.isolation, s.setup);
      break;
    case Backend::sqlite:
      provider = std::make_unique<SqliteProvider>(s.options, s.setup, s.identity);
      break;
    case Backend::postgres:
      provider = std::make_unique<PostgresProvider>(s.options, s.setup, s.identity);
      break;
  }
  {
    std::lock_guard lock(s.mutex);
    s.provider = std::move(provider);
  }
  run_phase(Phase::connectivity, [&] {
    s.provider->connect(s.report);
    return std::string("connected");
  });
  run_phase(Phase::provisioning, [&] {
    s.provider->provision(s.report);
    return s.provider->run_database() +
           (s.provider->template_cached() ? " (cloned the cached template)" : "");
  });
  run_phase(Phase::schema, [&] {
    s.provider->verify();
    return std::string("schema verified");
  });
}

TestContext TestEnvironment::begin_test(std::string name) {
  Impl& s = *impl_;
  auto state = std::make_unique<TestContextState>();
  state->name = std::move(name);
  if (!s.started) {
    state->setup_fault = FaultClass::internal;
    state->setup_error = std::make_exception_ptr(
        Error(FaultClass::internal, "begin_test before a successful TestEnvironment::start()"));
    return TestContext(std::move(state));
  }
  if (!s.enter_test()) {
    // The safe point of a stop: the provider may be torn down by now; it is never touched again.
    state->setup_fault = FaultClass::internal;
    const int sig = teardown_signal();
    state->setup_error = std::make_exception_ptr(
        Error(FaultClass::internal,
              sig != 0 ? "the run is stopping (" + std::string(::strsignal(sig)) + "); test not run"
                       : std::string("the run has finished; test not run")));
    return TestContext(std::move(state));
  }
  state->left = [&s] { s.leave_test(); };
  state->label.emplace(state->name);
  RetryPolicy policy;
  policy.deadline = s.circuit_open ? std::chrono::milliseconds(0) : std::chrono::milliseconds(3000);
  policy.max_attempts = s.circuit_open ? 1 : 3;
  policy.on_retry = [&](const RetryAttempt&, const Error&, std::chrono::nanoseconds) {
    s.report.add_retries(1);
  };
  try {
    retry_with_deadline(
        [&] {
          state->store.reset();
          state->sandbox.reset();
          state->repo.reset();
          s.provider->begin(*state);
        },
        policy);
    s.circuit_open = false;
    state->report = &s.report;
    if (state->repo) {
      const repo::PoolStats stats = state->repo->pool().stats();
      s.report.record_pool_sample(stats.in_use, stats.size);
      for (const auto& holder : state->repo->pool().checked_out())
        state->held_at_begin.push_back(holder.connection_id);
    }
  } catch (const Error& error) {
    state->store.reset();
    state->sandbox.reset();
    state->repo.reset();
    state->setup_fault = error.fault();
    state->setup_error = std::current_exception();
    if (error.fault() == FaultClass::connectivity) s.circuit_open = true;
  } catch (const std::exception& error) {
    state->setup_fault = FaultClass::internal;
    state->setup_error = std::current_exception();
  }
  return TestContext(std::move(state));
}

bool TestEnvironment::stop_requested() const noexcept {
  return impl_->stopping();
}

void TestEnvironment::request_stop() noexcept {
  Impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  if (s.state != RunState::open) return;
  s.state = RunState::stopping;
  if (s.tests > 0 && s.provider) {
    // Only while tests run: start() owns the provider alone (its phases have deadlines).
    detail::log().warn("stopping: cancelling the database work of {} test(s) in progress", s.tests);
    lock.unlock();
    s.provider->cancel_in_flight();
    lock.lock();
  }
  // start() is waited for (its phases have deadlines; a third signal still kills at once).
  s.idle.wait(lock, [&] { return !s.starting; });
  // A second signal ends the wait for tests early; it is checked at least every 100 ms.
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  const int signals = teardown_signal_count();
  auto next_cancel = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (s.tests > 0) {
    if (std::chrono::steady_clock::now() >= next_cancel) {
      // A test that entered a database wait after the last cancel.
      lock.unlock();
      s.provider->cancel_in_flight();
      lock.lock();
      next_cancel = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline || teardown_signal_count() > signals) {
      s.abandoned = true;
      detail::log().error(
          "stopping: {} test(s) still running; tearing down the databases without waiting",
          s.tests);
      return;
    }
    s.idle.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void TestEnvironment::finish() noexcept {
  // The owner finishing normally goes through the same two steps as a signal: the stop request
  // (runs here, or waits for the watcher already running it), then the teardown action (runs
  // here, or waits for the watcher), so the caller may destroy the environment right after.
  impl_->stop_request.run_now();
  impl_->teardown.run_now();
  finish_now();
}

void TestEnvironment::finish_now() noexcept {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.state == RunState::finished) return;
    s.state = RunState::finished;
  }
  PhaseTimer timer(s.report, Phase::teardown);
  if (s.provider) s.provider->teardown(s.options.keep, s.kept);
  // After an abandoned wait a test thread may still hold the provider (its isolation's release
  // refers to it): it is left to the process's end, which the signal brings.
  if (!s.abandoned) s.provider.reset();
  for (const auto& name : s.kept) std::fprintf(stderr, "gamebot harness: kept %s\n", name.c_str());
  timer.succeed(s.kept.empty() ? "everything removed" : "kept " + std::to_string(s.kept.size()));
  try {
    if (!s.options.report_path.empty()) s.report.write_json(s.options.report_path);
  } catch (const std::exception& e) {
    detail::log().error("{}", e.what());
  }
}

}  // namespace gamebot::harness
