#include "provision/postgres_provider.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "env/schema_check.hpp"
#include "env/tracking_backend.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/retry.hpp"
#include "gamebot/harness/shared_postgres.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/harness/version.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/connection_budget.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/repo/sandbox.hpp"
#include "log.hpp"
#include "provision/clone_queue.hpp"
#include "provision/connection_plan.hpp"
#include "provision/pool_hint.hpp"
#include "provision/repo_settings.hpp"
#include "provision/template_cache.hpp"
#include "test_context_state.hpp"

namespace gamebot::harness::provision {

namespace {

// How often a connectivity phase that keeps failing says so (its first failure at once).
constexpr std::chrono::seconds kConnectProgressInterval{3};

struct PostgresProvider final : Provider {
  PostgresProvider(const HarnessOptions& options, const HarnessSetup& setup,
                   const RunIdentity& identity)
      : options_(options),
        setup_(setup),
        identity_(identity),
        schema_(eventstore::kDefaultPostgresSchema) {
    auto store = eventstore::postgres_event_store_migrations(schema_);
    store_migrator_.emplace(eventstore::postgres_event_store_migrator(schema_));
    if (!setup.app_migrations.empty())
      app_migrator_.emplace(setup.app_migrations, app_migrator_options());
    store_objects_ = env::objects_created_by(store);
    for (const auto& o : env::objects_created_by(setup.app_migrations)) app_objects_.push_back(o);
    for (const auto& o : setup.expected_objects) app_objects_.push_back(o);
    hash_ = repo::Migrator::checksum(store_migrator_->set_hash() +
                                     (app_migrator_ ? app_migrator_->set_hash() : ""))
                .substr(0, 16);
    connect_options_.postgres.budget = budget_;
  }

  ~PostgresProvider() override { stop_background(); }

  // ---- phase 2 ----
  void connect(RunReport& report) override {
    report_ = &report;
    plan_ = plan_connections(options_.isolation, setup_.test_threads, setup_.prepared_clones,
                             options_.max_connections, holds_lease());
    if (!options_.database_url) {
      EphemeralPostgresOptions ep;
      ep.run_id = identity_.run_id.str();
      ep.orphan_grace = setup_.orphan_grace;
      // One server for the whole ctest run when its fixture names a run directory (not with
      // --keep: a kept run keeps a server of its own).
      const auto shared_dir =
          options_.keep ? std::nullopt : SharedPostgres::run_dir_from_environment();
      if (shared_dir) {
        shared_.emplace(
            SharedPostgres::acquire(*shared_dir, identity_.run_id.str(), std::move(ep)));
        admin_url_ = repo::DatabaseUrl::parse(shared_->url("postgres"));
      } else {
        server_.emplace(std::move(ep));
        admin_url_ = repo::DatabaseUrl::parse(server_->url("postgres"));
      }
    } else {
      admin_url_ = *options_.database_url;
    }
    RetryPolicy policy;
    policy.deadline = options_.connect_deadline;
    int attempts = 0;
    // A wrong host must not look like a hang: the first failure, then one line every few
    // seconds, says what is being tried, what failed last and how long is left.
    const auto connect_start = std::chrono::steady_clock::now();
    auto next_progress = connect_start;
    policy.on_retry = [&](const RetryAttempt& attempt, const Error& error,
                          std::chrono::nanoseconds) {
      report.add_retries(1);
      const auto now = std::chrono::steady_clock::now();
      if (now < next_progress) return;
      next_progress = now + kConnectProgressInterval;
      std::string last = error.message();
      std::replace(last.begin(), last.end(), '\n', ' ');
      detail::log().warn(
          "connecting to PostgreSQL at {}: attempt {} failed ({}); retrying, {:.1f} s left",
          admin_url_.describe_target(), attempt.number, last,
          std::chrono::duration<double>(options_.connect_deadline - (now - connect_start)).count());
    };
    repo::ConnectOptions connect_options = connect_options_;
    connect_options.postgres.connect_timeout = std::chrono::seconds(2);
    // The run's minimum set first, all or nothing (connection_budget.hpp); the admin connection
    // and what follows take its placeholders' places.
    guess_run_database();
    auto open_admin = [&](std::size_t reserve) {
      try {
        retry_with_deadline(
            [&] {
              ++attempts;
              if (budget_->placeholders() == 0)
                budget_->reserve(reserve_urls(reserve), connect_options.postgres);
              admin_ = repo::connect(admin_url_, connect_options);
            },
            policy);
      } catch (const RetryExhausted& e) {
        throw Error(e.fault(), "cannot reach PostgreSQL at " + admin_url_.describe_target() +
                                   " after " + std::to_string(e.attempts()) + " attempts within " +
                                   std::to_string(options_.connect_deadline.count()) +
                                   " ms; last error: " + e.last_error());
      } catch (const Error& e) {
        throw Error(e.fault(), "PostgreSQL at " + admin_url_.describe_target() + " refused us (" +
                                   std::to_string(attempts) + " attempt" +
                                   (attempts == 1 ? "" : "s") + ", not retried): " + e.message());
      }
    };
    // Every process after a run's first finds the template built and its check recorded, and
    // needs no transient connection: two placeholders fewer to open and close (~5 ms each on
    // an idle server, more on a busy one). A cold or unchecked template gets the whole set,
    // still taken all or nothing while holding none: the admin connection is closed first.
    open_admin(plan_.reserve_warm);
    server_version_ = server_version(*admin_);
    template_.emplace(
        admin_url_, hash_, identity_.run_id.str(), setup_.orphan_grace, *store_migrator_,
        app_migrator_, server_version_,
        [this](const std::string& resource) { return marker_for(resource); }, connect_options_);
    // What the server holds of ours, read once: the reserve's size, the reap and a warm claim
    // are decided by it (provision()).
    listed_ = marked::list(*admin_);
    if (plan_.reserve > plan_.reserve_warm && !template_listed_verified()) {
      admin_.reset();
      budget_->release_reserve();
      open_admin(plan_.reserve);
    }
    // Held until the provider is destroyed: our markers promise it (see marked_resources.hpp).
    if (holds_lease())
      lease_.emplace(
          marked::ServerLease::acquire(admin_url_, marker_for("lease"), connect_options_));
  }

  // As libpq read it at connect time (no round trip); asked for when it reported none.
  static std::int64_t server_version(repo::Connection& admin) {
    if (const auto* postgres = dynamic_cast<const repo::PostgresConnection*>(&admin))
      if (const int version = postgres->server_version(); version > 0) return version;
    return admin.query_value<std::int64_t>("SELECT current_setting('server_version_num')::bigint")
        .value_or(0);
  }

  // Under transaction isolation a warm process's first connections are the admin connection and
  // the run pool's, to the pooled database it claims. The claim is made on the admin connection,
  // so the pool's would be opened only after it (~4 ms on an idle server, in series): instead
  // one placeholder of the reserve is opened to the pooled database most likely to be claimed
  // (pool_hint.hpp), and the claim tries that one first.
  void guess_run_database() {
    if (options_.isolation != Isolation::transaction || !pooled()) return;
    std::optional<std::string> hint = last_released_pooled(admin_url_.describe_target(), hash_);
    if (hint && is_pooled_database_name(admin_url_, hash_, *hint)) guessed_run_db_ = *hint;
  }

  std::vector<repo::DatabaseUrl> reserve_urls(std::size_t count) const {
    std::vector<repo::DatabaseUrl> urls(count, admin_url_);
    if (count > 1 && guessed_run_db_) urls.back() = session_url(*guessed_run_db_);
    return urls;
  }

  // Whether this run makes resources that the reaper judges by their owner's life (its own run
  // database, clones, schemas), whose markers promise a server lease. A pooled run under
  // transaction isolation makes none: a pooled database is judged by its template (stale or
  // not) and a template is never reaped, so it spares the lease's connection (one backend start
  // per test process). Database isolation's clones are its own, pooled run database or not.
  bool holds_lease() const { return !(pooled() && options_.isolation == Isolation::transaction); }

  // ---- markers and drops (the rules: marked_resources.hpp) ----
  RunMarker marker_for(const std::string& resource) const {
    RunMarker marker = RunMarker::for_this_process(identity_.run_id.str(), resource);
    marker.server_lease = holds_lease();
    return marker;
  }

  void mark(repo::Connection& c, const std::string& db, const std::string& resource) {
    marked::mark(c, db, marker_for(resource));
  }

  // Drops `db` if `owner` accepts its marker; `c` is replaced if the server closed it.
  bool drop_marked(std::unique_ptr<repo::Connection>& c, const std::string& db,
                   const marked::Owner& owner) {
    return marked::drop_if_owned(admin_url_, c, db, owner);
  }

  bool drop_own(std::unique_ptr<repo::Connection>& c, const std::string& db) {
    return drop_marked(c, db, marked::owned_by_run(identity_.run_id.str()));
  }

  // Databases whose marker's owner is gone. An unmarked one (a clone whose run died between
  // CREATE DATABASE and its marker) is never touched: `gamebot-store test-dbs list` shows it.
  // Spent clones are left to the releaser thread (tidy_spent()): a DROP DATABASE here would be on
  // the process's critical path.
  void reap() {
    marked::reap_orphans(admin_url_, admin_, setup_.orphan_grace, marked::SpentClones::leave,
                         listed_);
  }

  // ---- the template (template_cache.hpp) ----
  void clone(repo::Connection& c, const std::string& db, const std::string& resource) {
    c.execute(template_->clone_sql(db));
    mark(c, db, resource);
  }

  // ---- pooled run databases (marked_resources.hpp, claims) ----
  // With one process per test case, every process created and dropped a run database of its own
  // (CREATE and DROP DATABASE: ~90 ms of a ~130 ms process). Under transaction isolation every
  // test's writes are rolled back, so a run database is left as its template made it (sequences
  // aside: a rollback does not undo nextval, as between two tests of one process) and the next
  // process can use it. So run databases are a pool per template: a process claims a free one
  // for its whole life (the claim is a session lock on the admin connection, freed by the server
  // if the process dies), makes one only when none is free, and at exit releases it instead of
  // dropping it; a `ctest -j2` run makes about two. A process that saw its database dirty (a
  // leak, a dirty connection return, a sandbox that could not roll back, a test never ended)
  // drops it instead: it holds the claim, so nobody else is using it.
  // Under database isolation the tests use prepared clones and never touch the run database: it
  // is only checked (when the template's check is not recorded yet), so it is pooled the same
  // way and never dirty.
  bool pooled() const {
    return (options_.isolation == Isolation::transaction ||
            options_.isolation == Isolation::database) &&
           !options_.keep;
  }

  // The first free pooled database of the template, claimed, or a new slot made under its claim.
  // Under the template lock (the template is not rebuilt meanwhile).
  std::string claim_pooled() {
    const std::string origin = template_->name();
    if (!template_seen_)
      throw Error(FaultClass::provisioning, "template database " + origin + " vanished");
    const std::optional<std::uint32_t> origin_oid = template_seen_->oid;
    if (auto free = marked::claim_free(*admin_, marked::kPooledResource, origin, *origin_oid,
                                       guessed_run_db_.value_or(std::string())))
      return *free;
    // A slot whose name is taken (in use, stale, unmarked) is skipped; a pool this size means
    // something keeps leaving databases behind.
    constexpr int kMaxSlots = kMaxPooledSlots;
    for (int slot = 1; slot <= kMaxSlots; ++slot) {
      const std::string name = template_->pooled_name(slot);
      if (marked::database_oid(*admin_, name) || !marked::try_claim(*admin_, name)) continue;
      try {
        // Made since the look above, by a process that has released it already.
        if (marked::database_oid(*admin_, name)) {
          marked::release_claim(*admin_, name);
          continue;
        }
        admin_->execute(template_->clone_sql(name));
        RunMarker marker = marker_for(std::string(marked::kPooledResource));
        marker.origin = origin;
        marker.origin_oid = *origin_oid;
        marked::mark(*admin_, name, marker);
      } catch (...) {
        if (admin_->is_alive()) marked::release_claim(*admin_, name);
        throw;
      }
      return name;
    }
    throw Error(FaultClass::provisioning, "no free pooled run database among " +
                                              std::to_string(kMaxSlots) + " slots of " + origin +
                                              " (see gamebot-store test-dbs list)");
  }

  marked::Owner pooled_owner() const {
    return marked::shared_clone_of(std::string(marked::kPooledResource), template_->name());
  }

  // Ends this process's claim on its pooled run database: dropped if `dirty`, else left for the
  // next process. A database whose marker is no longer a pooled one is left alone and reported.
  void release_pooled(bool dirty) {
    if (!admin_ || !admin_->is_alive()) {
      // The claim went with the session; a dirty database is dropped only if claimed anew.
      admin_ = repo::connect(admin_url_);
      if (!dirty || !marked::try_claim(*admin_, run_db_)) return;
    }
    const std::optional<RunMarker> marker = marked::marker_of(*admin_, run_db_);
    const bool reusable = !dirty && marker && pooled_owner()(*marker);
    if (!marker || !pooled_owner()(*marker)) {
      left_.push_back(run_db_ + ": its marker is no longer this run's, so it was kept");
    } else if (dirty) {
      detail::log().warn("dropping the pooled run database {}: this process left it dirty",
                         run_db_);
      if (!drop_marked(admin_, run_db_, pooled_owner()))
        left_.push_back(run_db_ + ": its marker is no longer this run's, so it was kept");
    }
    if (admin_->is_alive()) {
      marked::release_claim(*admin_, run_db_);
      // The guess was this database: the hint already names it.
      if (reusable && guessed_run_db_ != run_db_)
        remember_released_pooled(admin_url_.describe_target(), hash_, run_db_);
    }
  }

  // The run database, made or claimed. Under the template lock.
  void make_run_database() {
    if (pooled()) {
      run_db_ = claim_pooled();
      return;
    }
    run_db_ = test_database_name(identity_);
    clone(*admin_, run_db_, "database");
    record_created(run_db_);
  }

  // ---- phase 3 ----
  void provision(RunReport&) override {
    reap();
    teardown_ = process_teardown().add("drop the run's PostgreSQL databases",
                                       [this] { drop_everything(); });
    if (claim_pooled_warm()) return;
    admin_->query("SELECT pg_advisory_lock($1)", kTemplateLockKey);
    try {
      template_seen_ = marked::look_up(*admin_, template_->name());
      cached_ = template_seen_ && template_seen_->marker;
      if (!cached_) {
        cached_ = template_->build_or_await(admin_);
        template_seen_ = marked::look_up(*admin_, template_->name());
      }
      make_run_database();
    } catch (...) {
      admin_->query("SELECT pg_advisory_unlock($1)", kTemplateLockKey);
      throw;
    }
    admin_->query("SELECT pg_advisory_unlock($1)", kTemplateLockKey);
  }

  // The template as connect() listed it; nullopt when it was not there.
  std::optional<marked::MarkedDatabase> template_listed() const {
    for (const marked::MarkedResource& r : listed_)
      if (r.name == template_->name() && r.valid) return marked::MarkedDatabase{r.marker, r.oid};
    return std::nullopt;
  }

  // Whether the listed template records that a clone of it passed this code's check.
  bool template_listed_verified() const {
    const auto listed = template_listed();
    return listed && listed->marker && listed->marker->verified == schema_fingerprint();
  }

  // A warm process claims a free pooled database of the template as connect() listed it, without
  // the template lock (two round trips fewer): the lock keeps a rebuild from racing a clone being
  // made, and nothing is made here. A claimed database is a clone of exactly that template (its
  // marker, read again under the claim, names the listed oid), and a template never changes once
  // built; if another run rebuilds it meanwhile, the clone turns stale and the reapers drop it
  // once this process's claim is gone.
  bool claim_pooled_warm() {
    if (!pooled()) return false;
    std::optional<marked::MarkedDatabase> listed = template_listed();
    if (!listed || !listed->marker || listed->marker->resource != marked::kTemplateResource)
      return false;
    std::optional<std::string> free =
        marked::claim_free(*admin_, marked::kPooledResource, template_->name(), listed->oid,
                           guessed_run_db_.value_or(std::string()), listed_);
    if (!free) return false;
    run_db_ = *free;
    template_seen_ = std::move(listed);
    cached_ = true;
    return true;
  }

  // ---- phase 4 ----
  std::vector<std::string> check(const std::string& db) {
    auto c = repo::connect(admin_url_.with_database(db), connect_options_);
    auto problems =
        env::schema_problems(*c, *store_migrator_, app_migrator_, store_objects_, schema_);
    for (auto& line : env::missing_objects(*c, app_objects_, "public")) problems.push_back(line);
    return problems;
  }

  // What the schema check's verdict depends on besides the database: the migration sets, the
  // objects required and the schema looked in, and the harness (the check's code) itself.
  std::string schema_fingerprint() const {
    std::string text = store_migrator_->set_hash() + "\n" +
                       (app_migrator_ ? app_migrator_->set_hash() : std::string()) + "\n" +
                       schema_ + "\n" + std::string(harness_version()) + "\n";
    for (const auto* objects : {&store_objects_, &app_objects_})
      for (const ExpectedObject& o : *objects)
        text += std::to_string(static_cast<int>(o.kind)) + " " + o.name + "\n";
    return repo::Migrator::checksum(text);
  }

  // The template's marker records that a clone of it passed the check with this fingerprint.
  // Under the template lock: every clone and rebuild of the template happens under it.
  void record_template_verified(const std::string& fingerprint) {
    admin_->query("SELECT pg_advisory_lock($1)", kTemplateLockKey);
    try {
      std::optional<RunMarker> marker = marked::marker_of(*admin_, template_->name());
      if (marker && marker->resource == marked::kTemplateResource &&
          marker->verified != fingerprint) {
        marker->verified = fingerprint;
        marked::mark(*admin_, template_->name(), *marker);
      }
    } catch (...) {
      admin_->query("SELECT pg_advisory_unlock($1)", kTemplateLockKey);
      throw;
    }
    admin_->query("SELECT pg_advisory_unlock($1)", kTemplateLockKey);
  }

  void verify() override {
    const std::string fingerprint = schema_fingerprint();
    // The run database is a clone of the template made in provision(); a template whose clone
    // passed this same check is not checked again in every process of a run.
    // As provision() saw it when the run database was cloned or claimed from it.
    if (cached_) {
      verified_on_template_ = template_seen_ && template_seen_->marker &&
                              template_seen_->marker->verified == fingerprint;
    }
    auto problems = verified_on_template_ ? std::vector<std::string>{} : check(run_db_);
    if (!problems.empty() && cached_) {
      detail::log().warn("cached template {} does not match the code; rebuilding it:\n{}",
                         template_->name(), env::join_lines(problems));
      admin_->query("SELECT pg_advisory_lock($1)", kTemplateLockKey);
      if (pooled()) {
        // A clone of the outdated template: no process may take it again (the rebuilt template
        // has another oid, so the reaper drops the others as stale).
        drop_marked(admin_, run_db_, pooled_owner());
        marked::release_claim(*admin_, run_db_);
      } else {
        drop_own(admin_, run_db_);
        forget_created(run_db_);
      }
      drop_marked(admin_, template_->name(), [](const RunMarker& marker) {
        return marker.resource == marked::kTemplateResource;
      });
      template_->build(admin_);
      template_seen_ = marked::look_up(*admin_, template_->name());
      make_run_database();
      admin_->query("SELECT pg_advisory_unlock($1)", kTemplateLockKey);
      cached_ = false;
      problems = check(run_db_);
    }
    if (!problems.empty())
      throw Error(FaultClass::schema, "database " + run_db_ + " does not match the code:\n" +
                                          env::join_lines(problems));
    if (!verified_on_template_) record_template_verified(fingerprint);
    if (options_.isolation == Isolation::transaction || options_.isolation == Isolation::none) {
      // The tests' repo and store. Under database and schema isolation the tests use prepared
      // databases or schemas, each with a store of its own: a store here would only cost its
      // pool's connection and a listener's once a test writes.
      repo::RepoOptions repo_options;
      repo_options.pool = pool_for(setup_.test_threads);
      repo_options.pool.max_size = plan_.run_pool_max;
      repo_options.pool.connect = connect_options_;
      run_repo_.emplace(repo::Repo::open(session_url(run_db_), repo_options));
      eventstore::PostgresBackendOptions backend_options;
      backend_options.migrate = false;
      // Checked just now, or a clone of the template whose check with this code is recorded.
      backend_options.verify_schema = false;
      // Under transaction isolation every write is in a test's sandbox, whose first write starts
      // the store's background to log the bound (the constructor's would be of no use to it), and
      // the database is this process's alone (its claim).
      backend_options.log_watermark_at_start = options_.isolation != Isolation::transaction;
      run_backend_ = std::make_shared<eventstore::PostgresBackend>(*run_repo_, backend_options);
    }
    if (options_.isolation == Isolation::database)
      template_oid_ = template_seen_ ? template_seen_->oid : 0;
    // The tests' sessions hold what they need now; the rest of the reserve goes back.
    if (options_.isolation == Isolation::transaction || options_.isolation == Isolation::none)
      budget_->release_reserve();
    if (options_.isolation == Isolation::database || options_.isolation == Isolation::schema) {
      // One preparer per ready slot: preparing is mostly waiting on the server (CREATE
      // DATABASE, connecting to a fresh database, the store's start-up), so they overlap.
      clones_.start(ready_target());
    }
  }

  // The URL of the tests' sessions on `db`: JIT off (it only costs on test-sized tables: the
  // store's first record_watermark() in a session took ~160 ms with it, ~6 ms without), and the
  // schema of `schema` isolation first in the search path; options the user's URL gives are
  // kept after ours.
  repo::DatabaseUrl session_url(const std::string& db, const std::string& schema = {}) const {
    std::string options = "-c jit=off";
    if (!schema.empty()) options += " -c search_path=" + schema;
    if (auto user = admin_url_.parameter("options"); user && !user->empty()) options += " " + *user;
    return admin_url_.with_database(db).with_parameter("options", options);
  }

  // ---- phase 5 ----
  // See clone_database_prefix(): derived from this run's own database name (run id and worker),
  // never from a pooled one: a pooled name is reused across runs, and an unmarked clone left by
  // a killed run would block its clone names for every later run.
  std::string clone_name(std::uint64_t n) const {
    return clone_database_prefix(test_database_name(identity_)) + std::to_string(n);
  }

  std::size_t ready_target() const { return plan_.preparers; }

  // One round trip per schema: CREATE SCHEMA, its marker, the store's and the application's
  // migration SQL and the migrators' bookkeeping rows, exactly what the migrators would leave
  // (phase 4 checks the same migrators against it), in one transaction.
  std::string schema_script(const std::string& name) const {
    const std::string q = repo::quote_identifier(name);
    std::string sql = "BEGIN;\nCREATE SCHEMA " + q + ";\nCOMMENT ON SCHEMA " + q + " IS " +
                      repo::embed_sql_name(
                          RunMarker::for_this_process(identity_.run_id.str(), "schema").serialize(),
                          repo::SqlToken::literal) +
                      ";\nSET LOCAL search_path = " + q + ", public;\n";
    auto add = [&](const repo::Migrator& migrator) {
      const std::string table = q + "." + repo::quote_identifier(migrator.options().table);
      sql += "CREATE TABLE " + table +
             " (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now());\n";
      for (const auto& m : migrator.migrations()) {
        sql += m.sql + ";\nINSERT INTO " + table + " (version, name, checksum) VALUES (" +
               std::to_string(m.version) + ", " +
               repo::embed_sql_name(m.name, repo::SqlToken::literal) + ", " +
               repo::embed_sql_name(repo::Migrator::checksum(m.sql), repo::SqlToken::literal) +
               ");\n";
      }
    };
    add(eventstore::postgres_event_store_migrator(name));
    if (app_migrator_) add(repo::Migrator(setup_.app_migrations, app_migrator_options(name)));
    return sql + "COMMIT;";
  }

  // Background (preparer thread): one database clone or schema, connected and ready.
  Prepared prepare_one(repo::Connection& admin, std::unique_ptr<repo::Connection>& run_conn) {
    Prepared prepared;
    repo::RepoOptions repo_options;
    repo_options.pool = pool_for(setup_.test_threads);
    repo_options.pool.min_size = 1;  // connected now, not by the test
    repo_options.pool.connect = connect_options_;
    eventstore::PostgresBackendOptions backend_options;
    backend_options.migrate = false;
    repo::DatabaseUrl url = session_url(run_db_);
    const std::uint64_t n = ++counter_;
    if (options_.isolation == Isolation::database) {
      prepared.name = clone_name(n);
      if (!take_ready(admin, prepared.name)) {
        admin.execute(template_->clone_sql(prepared.name));
        record_created(prepared.name);
        mark(admin, prepared.name, "clone");
      }
      url = session_url(prepared.name);
      // A clone of the template checked in verify() (a ready clone taken is one too: its marker
      // names the template's oid).
      backend_options.verify_schema = false;
    } else {
      prepared.name = "gamebot_test_s" + std::to_string(n);
      if (!run_conn) run_conn = repo::connect(url, connect_options_);
      run_conn->execute_batch(schema_script(prepared.name));
      url = session_url(run_db_, prepared.name);
      backend_options.schema = prepared.name;
    }
    prepared.repo.emplace(repo::Repo::open(url, repo_options));
    prepared.backend =
        std::make_shared<eventstore::PostgresBackend>(*prepared.repo, backend_options);
    return prepared;
  }

  // ---- ready clones (database isolation; marked_resources.hpp, claims) ----
  // The clones prepared ahead that a process did not use are not dropped at its exit but left
  // as ready clones of the template (marked "ready", renamed by their oid), and a preparer takes
  // one before it makes a new one: one process per test case no longer creates and drops its
  // prepared-but-unused clones. A ready clone is taken under its claim and, still under it,
  // re-marked as this run's clone and renamed to this run's clone name before anything connects
  // to it, so a clone in use is always a run's (a crash leaves it to the reaper) and never
  // handed out twice. The run database under database isolation is a pooled one (pooled()).

  // Background (preparer thread): takes a ready clone as `name`; false if none is free.
  bool take_ready(repo::Connection& admin, const std::string& name) {
    const std::optional<std::string> ready =
        marked::claim_free(admin, marked::kReadyResource, template_->name(), template_oid_);
    if (!ready) return false;
    bool taken = false;
    try {
      // Ours (marked as this run's clone) before it takes our name: a name of this run never
      // carries another marker, and once re-marked it is no longer claimable.
      mark(admin, *ready, "clone");
      record_created(*ready);
      admin.execute("ALTER DATABASE " + repo::quote_identifier(*ready) + " RENAME TO " +
                    repo::quote_identifier(name));
      forget_created(*ready);
      record_created(name);
      taken = true;
    } catch (const Error& e) {
      // Someone connected to it (the rename needs it unused): it is dropped with this run's
      // clones, and a new one is made.
      detail::log().info("taking the ready clone {} failed ({}); creating one", *ready,
                         e.message());
    }
    if (admin.is_alive()) marked::release_claim(admin, *ready);
    return taken;
  }

  // At exit: this run's unused clone `name` becomes a ready clone of the template. False if it
  // is no longer this run's clone (then it is dropped or left as usual).
  bool offer_ready(repo::Connection& c, const std::string& name) {
    if (!marked::try_claim(c, name)) return false;
    bool offered = false;
    try {
      const std::optional<RunMarker> marker = marked::marker_of(c, name);
      const std::optional<std::uint32_t> oid = marked::database_oid(c, name);
      if (marker && oid && marker->resource == "clone" &&
          marker->run_id == identity_.run_id.str()) {
        const std::string ready = template_->ready_name(*oid);
        if (marked::try_claim(c, ready)) {
          c.execute("ALTER DATABASE " + repo::quote_identifier(name) + " RENAME TO " +
                    repo::quote_identifier(ready));
          RunMarker ready_marker = marker_for(std::string(marked::kReadyResource));
          ready_marker.origin = template_->name();
          ready_marker.origin_oid = template_oid_;
          marked::mark(c, ready, ready_marker);
          offered = true;
          marked::release_claim(c, ready);
        }
      }
    } catch (const Error& e) {
      detail::log().info("leaving the unused clone {} ready failed ({}); dropping it", name,
                         e.message());
    }
    if (c.is_alive()) marked::release_claim(c, name);
    return offered;
  }

  // Background (preparer thread, see clone_queue.hpp).
  Prepared prepare_next(CloneQueue::ThreadConnections& connections) {
    if (!connections.admin) connections.admin = repo::connect(admin_url_, connect_options_);
    return prepare_one(*connections.admin, connections.run);
  }

  // ---- spent clones (database isolation; marked_resources.hpp, kSpentResource) ----
  // A used clone is dirty and must go, but its DROP DATABASE (a checkpoint: ~85 ms on an idle
  // server) was most of a one-test process's teardown. So a used clone is re-marked spent (a
  // COMMENT) and dropped off every process's critical path: the releaser thread starts the drop
  // of one spent clone when it starts (a former process's) and after each release, and does not
  // wait for it (marked::start_dropping_spent()). A spent clone is never handed out (it is not
  // ready) and is always stale, so the reaper and `gamebot-store test-dbs reap` drop any left.

  RunMarker spent_marker() const {
    RunMarker marker = marker_for(std::string(marked::kSpentResource));
    marker.origin = template_->name();
    marker.origin_oid = template_oid_;
    return marker;
  }

  // Re-marks this run's clone `name` spent; true if it was.
  bool spend(repo::Connection& c, const std::string& name) {
    if (!marked::mark_spent(c, name, owned_clone(), spent_marker())) return false;
    forget_created(name);
    return true;
  }

  marked::Owner owned_clone() const {
    return [run_id = identity_.run_id.str()](const RunMarker& marker) {
      return marker.run_id == run_id && marker.resource == "clone";
    };
  }

  // Background (releaser thread): starts dropping one spent clone, if any is free, on the thread's
  // admin connection (which the drop keeps: the next use connects anew).
  void tidy_spent(CloneQueue::ThreadConnections& connections) {
    if (!connections.admin) connections.admin = repo::connect(admin_url_, connect_options_);
    if (auto name = marked::start_dropping_spent(connections.admin))
      detail::log().debug("harness: dropping the spent clone {} in the background", *name);
  }

  // Background (releaser thread): database isolation spends the clone (see above), schema
  // isolation drops the schema.
  void release_used(const std::string& name, CloneQueue::ThreadConnections& connections) {
    if (options_.isolation == Isolation::database) {
      if (!connections.admin) connections.admin = repo::connect(admin_url_, connect_options_);
      if (!spend(*connections.admin, name) && drop_own(connections.admin, name))
        forget_created(name);
      tidy_spent(connections);
    } else {
      if (!connections.run)
        connections.run = repo::connect(admin_url_.with_database(run_db_), connect_options_);
      connections.run->execute("DROP SCHEMA IF EXISTS " + repo::quote_identifier(name) +
                               " CASCADE");
    }
  }

  // ---- the databases this run created (created_mutex_) ----
  void record_created(const std::string& db) {
    std::lock_guard lock(created_mutex_);
    created_.push_back(db);
  }

  void forget_created(const std::string& db) {
    std::lock_guard lock(created_mutex_);
    std::erase(created_, db);
  }

  std::vector<std::string> created() {
    std::lock_guard lock(created_mutex_);
    return created_;
  }

  void begin(TestContextState& s) override {
    std::shared_ptr<eventstore::Backend> backend;
    if (options_.isolation == Isolation::transaction || options_.isolation == Isolation::none) {
      s.repo = *run_repo_;
      s.dirty_returns_before = run_repo_->pool().stats().dirty_returns;
      if (options_.isolation == Isolation::transaction) {
        repo::SandboxOptions sandbox_options;
        sandbox_options.label = s.name;
        s.sandbox = std::make_unique<repo::Sandbox>(*run_repo_, sandbox_options);
        // A pooled run database goes back to the pool only if every test ended without a leak
        // (the leak checks run before the release).
        tests_begun_.fetch_add(1);
        s.release = [this](std::vector<TestLeak>& leaks) {
          if (!leaks.empty()) run_dirty_ = true;
          tests_ended_.fetch_add(1);
        };
      }
      backend = run_backend_;
    } else {
      auto prepared = std::make_shared<Prepared>(clones_.take());
      s.repo = *prepared->repo;
      s.dirty_returns_before = prepared->repo->pool().stats().dirty_returns;
      backend = prepared->backend;
      s.release = [this, prepared](std::vector<TestLeak>&) {
        if (options_.keep) return;
        clones_.give_back(std::move(*prepared));
      };
    }
    s.tracker = std::make_shared<env::TrackingBackend>(backend);
    s.store.emplace(s.tracker);
  }

  // ---- phase 6 ----
  // Stops both threads (a clone being created is finished and recorded first) and closes what
  // they held; the databases themselves are dropped by drop_everything().
  void stop_background() noexcept { clones_.stop(); }

  // Whether this process may have left its run database other than its template made it.
  bool run_database_dirty() {
    if (run_dirty_ || tests_begun_.load() != tests_ended_.load()) return true;
    try {
      return run_repo_ && run_repo_->pool().stats().dirty_returns > 0;
    } catch (const std::exception&) {
      return true;
    }
  }

  void drop_everything() {
    stop_background();
    const bool dirty = run_database_dirty();
    run_backend_.reset();
    run_repo_.reset();
    if (pooled() && !run_db_.empty()) {
      try {
        release_pooled(dirty);
      } catch (const std::exception& e) {
        left_.push_back(run_db_ + ": " + e.what());
      }
    }
    std::vector<std::string> names = created();
    if (options_.keep) {
      keep_all(names);
      return;
    }
    // The admin connection, still open: on a full server a new one might not be had.
    std::unique_ptr<repo::Connection> c = std::move(admin_);
    try {
      if (!c || !c->is_alive()) c = repo::connect(admin_url_, connect_options_);
    } catch (const std::exception& e) {
      for (const auto& name : names) left_.push_back(name + ": " + e.what());
      return;
    }
    // Unused clones stay for the next process (see take_ready()), used ones are spent (see
    // spend()): no DROP DATABASE on the exit path.
    if (options_.isolation == Isolation::database && template_oid_ != 0) {
      const std::vector<std::string> unused = clones_.never_taken();
      for (const std::string& name : unused) {
        try {
          if (offer_ready(*c, name)) {
            forget_created(name);
            std::erase(names, name);
          }
        } catch (const std::exception& e) {
          detail::log().info("leaving {} ready failed: {}", name, e.what());
        }
      }
      for (const std::string& name : created()) {
        if (std::find(unused.begin(), unused.end(), name) != unused.end()) continue;
        try {
          if (spend(*c, name)) std::erase(names, name);
        } catch (const std::exception& e) {
          detail::log().info("leaving {} spent failed ({}); dropping it", name, e.what());
        }
      }
    }
    // What is left (not this run's clone any more, or spending failed) is dropped if still ours.
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      try {
        if (!drop_own(c, *it))
          left_.push_back(*it + ": its marker is no longer this run's, so it was kept");
      } catch (const std::exception& e) {
        left_.push_back(*it + ": " + e.what());
      }
    }
  }

  // --keep: each database marked kept (no reaper takes it), listed with a ready command.
  void keep_all(const std::vector<std::string>& names) {
    try {
      auto c = repo::connect(admin_url_, connect_options_);
      for (const auto& name : names) {
        if (!marked::keep(*c, name, marked::owned_by_run(identity_.run_id.str()))) continue;
        kept_.push_back("psql \"" + admin_url_.with_database(name).redacted() + "\"");
        detail::log().warn("kept for inspection: {}", kept_.back());
      }
    } catch (const std::exception& e) {
      detail::log().error("keeping the run's databases failed ({}); the next run may reap them",
                          e.what());
    }
  }

  // Stops a test waiting for a prepared database, and cancels (never terminates) the queries
  // running in the run's databases: from a connection of its own, so nothing a test thread uses
  // is touched; the tests' statements fail with "canceling statement due to user request".
  void cancel_in_flight() noexcept override {
    clones_.request_stop();
    std::vector<std::string> names = created();
    if (pooled() && !run_db_.empty()) names.push_back(run_db_);
    try {
      repo::ConnectOptions connect_options;
      connect_options.postgres.connect_timeout = std::chrono::seconds(2);
      auto c = repo::connect(admin_url_, connect_options);
      for (const auto& name : names) {
        c->query(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
            "pg_backend_pid() AND application_name IS DISTINCT FROM $2",
            name, std::string(eventstore::PostgresBackend::kListenerApplicationName));
      }
    } catch (const std::exception& e) {
      detail::log().warn("cancelling the tests' database work failed: {}", e.what());
    }
  }

  TeardownOutcome teardown(bool) noexcept override {
    teardown_.run_now();  // runs drop_everything(), or waits for the thread running it
    admin_.reset();
    budget_->release_reserve();
    if (report_ != nullptr) {
      report_->record_connections({budget_->peak(), budget_->cap(), budget_->opened()});
    }
    TeardownOutcome outcome{std::move(kept_), std::move(left_)};
    if (shared_) {
      shared_->release();  // the last live holder stops it
      return outcome;
    }
    if (!server_) {
      if (!outcome.kept.empty())
        detail::log().warn("remove what was kept with: gamebot-store test-dbs reap --kept '{}'",
                           admin_url_.redacted());
      return outcome;
    }
    if (options_.keep) {
      try {
        // The server stays up for the commands above; its removal takes it too.
        server_->keep();
        detail::log().warn(
            "the private PostgreSQL server in {} keeps running; remove it and what it holds "
            "with: gamebot-store test-dbs reap --kept '{}'",
            server_->directory().string(), admin_url_.redacted());
        return outcome;
      } catch (const std::exception& e) {
        detail::log().error("keeping the private server failed ({}); stopping it", e.what());
      }
    }
    server_->stop();
    return outcome;
  }

  std::string run_database() const override { return run_db_; }
  std::string migration_hash() const override { return hash_; }
  bool schema_verified_on_template() const override { return verified_on_template_; }
  bool template_cached() const override { return cached_; }

  const HarnessOptions& options_;
  const HarnessSetup& setup_;
  RunIdentity identity_;
  std::string schema_;
  std::optional<repo::Migrator> store_migrator_;
  std::optional<repo::Migrator> app_migrator_;
  std::vector<ExpectedObject> store_objects_;
  std::vector<ExpectedObject> app_objects_;
  std::string hash_;
  std::optional<EphemeralPostgres> server_;
  std::optional<SharedPostgres> shared_;  // instead of server_, see shared_postgres.hpp
  repo::DatabaseUrl admin_url_;
  // Every connection the provider opens counts against the run's cap (but the one
  // cancel_in_flight() opens on an interrupt, which must not wait for a slot).
  std::shared_ptr<repo::ConnectionBudget> budget_ =
      std::make_shared<repo::ConnectionBudget>(options_.max_connections);
  repo::ConnectOptions connect_options_;  // carries budget_
  ConnectionPlan plan_;                   // from connect() on
  RunReport* report_ = nullptr;           // connect()'s, for the connection figures
  std::unique_ptr<repo::Connection> admin_;
  std::optional<marked::ServerLease> lease_;
  std::int64_t server_version_ = 0;
  std::optional<TemplateCache> template_;  // from connect() on
  bool verified_on_template_ = false;      // verify() trusted the template's recorded check
  std::string run_db_;  // pooled(): claimed on admin_ from provision() until drop_everything()
  std::optional<std::string> guessed_run_db_;  // see guess_run_database()
  // The template as provision() (or verify()'s rebuild) read it under the template lock, before
  // cloning or claiming the run database from it; nullopt: absent.
  std::optional<marked::MarkedDatabase> template_seen_;
  std::vector<marked::MarkedResource> listed_;  // marked::list() as connect() read it
  bool cached_ = false;
  // Tests under transaction isolation begun and ended, and whether one ended with a leak: a
  // pooled run database is given back only if they match and none did.
  std::atomic<std::uint64_t> tests_begun_{0};
  std::atomic<std::uint64_t> tests_ended_{0};
  std::atomic<bool> run_dirty_{false};
  std::optional<repo::Repo> run_repo_;
  std::shared_ptr<eventstore::PostgresBackend> run_backend_;
  // Every database of this run not yet dropped, in creation order: the provider records each
  // one it creates (the run database, the clones the queue's preparers make) and forgets one
  // only once dropped, so drop_everything() drops all of them. Its own mutex: the queue's
  // threads record and forget without the queue's lock, and cancel_in_flight() reads it.
  std::mutex created_mutex_;
  std::vector<std::string> created_;
  std::vector<std::string> kept_;
  // What drop_everything() could not drop; read by teardown() once run_now() returned.
  std::vector<std::string> left_;
  std::atomic<std::uint64_t> counter_{0};
  // The template's oid, set by verify() before the preparers start (read by them): ready clones
  // are taken and left only for this very template.
  std::uint32_t template_oid_ = 0;
  // Declared after everything its threads use, so it stops them before those go.
  CloneQueue clones_{
      options_.isolation == Isolation::database ? "database" : "schema",
      [this](CloneQueue::ThreadConnections& c) { return prepare_next(c); },
      [this](const std::string& name, CloneQueue::ThreadConnections& c) { release_used(name, c); },
      [this](CloneQueue::ThreadConnections& c) {
        if (options_.isolation == Isolation::database && !options_.keep) tidy_spent(c);
      }};
  TeardownHandle teardown_;
};

}  // namespace

std::unique_ptr<Provider> make_postgres_provider(const HarnessOptions& options,
                                                 const HarnessSetup& setup,
                                                 const RunIdentity& identity) {
  return std::make_unique<PostgresProvider>(options, setup, identity);
}

}  // namespace gamebot::harness::provision
