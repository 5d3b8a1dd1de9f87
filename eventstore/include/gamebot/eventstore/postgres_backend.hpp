#pragma once

// The PostgreSQL event-store backend (libpq through gamebot::repo).
//
// Open it with eventstore::open(url) for a repo::DatabaseUrl such as
// "postgres://user@host/db?schema=game_events", PostgresBackend::open(url, options), or construct
// it on a caller's repo::Repo (to share its pool, a test sandbox, or an application transaction:
// the outbox pattern). Several stores (and per-test schemas) share one database, each in its own
// PostgreSQL schema.
//
// How it keeps the Backend contract (backend.hpp):
// * Every operation runs on Repo::acquire()'s connection. Outside a
//   transaction a write is ONE statement (a server-side function taking the
//   batch as arrays: one round trip however large the batch). Inside a
//   caller's transaction (or a sandbox) the function runs the append in a
//   subtransaction, so an expected outcome (a duplicate id that a racing
//   writer committed first) never aborts the caller's transaction.
// * Group commit: appends outside a transaction that arrive while
//   group_commit_in_flight of this backend's appends are committing queue;
//   when one ends, the first of them runs the whole queue as ONE statement
//   (one transaction, one WAL flush): the one-statement append's steps for a
//   set of streams, one block of positions for all, in queue order. A member
//   whose checks do not hold (new or deleted stream, wrong expected version,
//   duplicate id), or whose stream row another transaction holds (the group
//   locks with SKIP LOCKED, so it never waits for someone else's commit), is
//   left out and appends alone, which tells its own outcome; a statement the
//   server rejects (a member's invalid JSON) sends every member back alone,
//   so a fault reaches only its own caller. A lone writer finds nothing in
//   flight and goes straight to the one-statement path.
// * Stream versions: the append locks the stream's row (UPDATE ... version =
//   version + n), so writers of one stream serialize and an expected-version
//   race is a wrong_expected_version result; writers of different streams do
//   not wait for each other.
// * Global positions come from a sequence, taken as one consecutive block per
//   batch under a lock held for microseconds (not to commit). They may
//   therefore commit out of order, and a rolled-back append (a caller's
//   rollback, a duplicate id found only at insert) leaves a hole, which reads
//   step over as they step over hard-deleted events. Conflicts found before
//   positions are taken (expected version, a duplicate id already committed)
//   leave no hole.
// * No-skip rule, by a transaction-id watermark instead of a global lock (see
//   eventstore/README.md and src/postgres/watermark.hpp for the proof): an
//   append marks its transaction (a shared advisory lock keyed by its xid) and
//   publishes its xid before it takes positions. A reader probes (last
//   position taken L; the highest published xid; then a snapshot; then which
//   in-progress xids carry the mark) and exposes `$all` only up to the lowest
//   position a marked in-flight writer may hold, which it bounds from its
//   previous probes or from bounds that every backend logs in the schema.
//   Readers never block writers; writers never wait
//   for each other's commit, so concurrent writers scale and commits can be
//   grouped. `$all` reads and head_position() need READ COMMITTED (a caller's
//   REPEATABLE READ / SERIALIZABLE transaction gets gamebot::Error
//   configuration from them); stream reads work at any isolation.
// * Live subscriptions across processes: a background thread keeps a
//   dedicated connection that LISTENs on the schema's channel (and, after this
//   backend's own commits, sends one coalesced NOTIFY). When that connection
//   drops it reconnects with backoff, LISTENs again and wakes every subscriber,
//   which re-reads from its cursor: nothing is lost or repeated. Appends inside
//   a caller's transaction NOTIFY transactionally (delivered at its commit).
//   With notifications = poll the thread instead checks the watermark every
//   poll_interval.
// * The background thread and its connection start at the first subscription
//   (the first call of changes(), which every subscriber makes before its
//   first catch-up read; it waits for the LISTEN, so nothing committed after
//   the catch-up began is missed), the first write (append, link, delete: its
//   NOTIFY and the periodic watermark bounds need it) or the first
//   subscription lease (its release NOTIFYs), whichever comes first. A store
//   used only to read opens no connection beyond its pool's. The watermark
//   bound that must precede this process's first append is logged by the
//   constructor on the schema connection; inside a caller's transaction or a
//   sandbox, where that entry would stay invisible, the constructor starts the
//   background and waits for its first bound instead.
// * Persistent-subscription ownership: a session advisory lock held on a
//   dedicated connection that the SubscriptionLease owns; the server drops it
//   when the holder closes it or dies. Checkpoints live in a table.
// * Transaction pooling (pooling = transaction, URL pooling=transaction): a
//   pooler such as PgBouncer in pool_mode = transaction stands in front and
//   hands each transaction any server session, so nothing may outlive its
//   transaction on the server:
//   - statements run unnamed (PostgresOptions::prepared_statements = false on
//     every connection the backend opens; a caller's Repo must be set so);
//   - no session lock: the store's functions (migration 6) and the group
//     appends take positions through reserve_positions, whose reservation
//     lock is transaction-level and held for microseconds (schema.cpp);
//     appends keep every guarantee above (expected versions, consecutive
//     positions per batch, the no-skip rule). A single append calls the
//     function at once (no one-statement try: unprepared, it would be planned
//     on every call, where the function's plans stay cached per session);
//   - a lease is a transaction kept open on the lease's own connection,
//     holding a transaction-level advisory lock; its fencing token is taken on
//     another connection, so it is committed at once. Each lease held pins one
//     server connection of the pooler's pool for as long as it is held: size
//     the pool above the leases held at once;
//   - no LISTEN through the pooler: with listen_url (a direct URL of the same
//     database) the background connection LISTENs there as above; without it,
//     poll mode: another process's commit reaches subscribers within
//     poll_interval plus one probe (this process's own commits wake them at
//     once).
//   No SET: the repo's session settings are startup parameters (PgBouncer
//   passes application_name; keep statement_timeout 0, as PgBouncer refuses
//   the startup parameter "options" it travels in).
// * Read replicas (read_url, a hot standby): reads outside a transaction run
//   there through a pool of their own; writes, leases, checkpoints,
//   migrations, LISTEN and the watermark probes stay on the primary. Each
//   primary probe also reads the WAL insert position after it; the replica
//   serves `$all` up to the highest watermark whose position it has replayed
//   (src/postgres/replica.hpp proves that it then skips nothing).
//   replica_read_your_writes waits (up to replica_wait, then FaultClass::
//   timeout) until the replica has replayed the primary's WAL up to a position
//   read after the read began. A replica fault sends reads to the primary
//   (from their cursors: no gap, no repeat) for replica_retry.
// * Errors: a unique violation on (stream, version) is wrong_expected_version,
//   on the event id duplicate_event_id (told apart by constraint name); other
//   faults are repo::DatabaseError with their FaultClass (invalid JSON with
//   json_data on: serialization).
//
// created_at: the store passes each event's time (the caller's, for imports,
// else the store's clock when append was called); the backend keeps it as
// given. Stream creation and deletion times come from the server clock.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/eventstore/backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::eventstore {

// How subscribers learn about commits made through other connections.
enum class PostgresNotifications {
  listen,  // LISTEN/NOTIFY on a dedicated connection (the default)
  poll,    // no LISTEN: check the watermark every poll_interval
};

// What stands between the store and the server.
enum class PostgresPooling {
  none,         // every connection is a session of its own (direct, or a pooler in session mode)
  transaction,  // a pooler in transaction mode (PgBouncer pool_mode = transaction): see above
};

struct PostgresBackendOptions {
  // PostgreSQL schema of the store's tables and functions (created if missing).
  std::string schema = std::string(kDefaultPostgresSchema);
  // Also store each event's data as jsonb (column data_json) so events can be
  // queried in SQL. For JSON codecs only: data that is not valid UTF-8 JSON
  // fails the append with FaultClass::serialization.
  bool json_data = false;
  // LISTEN/NOTIFY or polling, see PostgresNotifications. With transaction
  // pooling and no listen_url, always poll.
  PostgresNotifications notifications = PostgresNotifications::listen;
  // A pooler in transaction mode in front of the server (see the notes above).
  PostgresPooling pooling = PostgresPooling::none;
  // Transaction pooling only: a direct URL of the same database (not through
  // the pooler) for the LISTEN connection. Unset: poll mode.
  std::optional<repo::DatabaseUrl> listen_url;
  // A streaming hot-standby replica of the same database (a direct URL, not
  // through a transaction pooler) that serves reads: read_all, read_stream,
  // head_position, stream_info, list_streams and so the catch-up reads of
  // subscriptions, through a pool of its own (options.repo's settings).
  // Writes, checkpoints, leases, snapshots, migrations, LISTEN and the
  // watermark probes stay on the primary; reads inside a caller's transaction
  // or a sandbox too. Never migrated. Unset: everything on the primary. See
  // "Read replicas" in eventstore/README.md.
  std::optional<repo::DatabaseUrl> read_url;
  // Replica reads see every commit that returned before the read started
  // (this process's or another's): the read waits for the replica to replay
  // the primary's WAL up to a position read on the primary after the read
  // began (one primary round trip per read). Off: a replica read answers at
  // once with what the replica has replayed (`$all` still never skips).
  bool replica_read_your_writes = false;
  // The longest a read-your-writes read waits for the replica's replay; past
  // it the read fails with gamebot::Error FaultClass::timeout (ms).
  std::chrono::milliseconds replica_wait{5000};
  // After a replica fault (connection lost, replica down) reads go to the
  // primary, continuing from their cursors; this long after the fault the
  // replica is tried again (ms).
  std::chrono::milliseconds replica_retry{1000};
  // poll mode: how often the watermark is checked. listen mode: the longest
  // wait between reconnect attempts of the listening connection.
  std::chrono::milliseconds poll_interval{100};
  // Apply pending schema migrations on construction; false only verifies and
  // throws a schema fault if the schema is not current.
  bool migrate = true;
  // With migrate false: whether construction verifies the schema (two round
  // trips). False only when the caller has checked it with this code, as the
  // test harness has (its database is a clone of a template whose check it
  // recorded); a schema that is not current then fails as SQL errors.
  bool verify_schema = true;
  // Whether construction outside a transaction logs a watermark bound
  // (watermark.hpp) on the connection that checked the schema, so readers
  // elsewhere bound this process's first append at once. Off: the bound is
  // logged by the background, started by the first write, once it has
  // connected (readers elsewhere may wait that long). The harness turns it
  // off where every write is inside a sandbox, which starts the background
  // anyway and whose writes no other process reads.
  bool log_watermark_at_start = true;
  // Group commit of appends made outside a transaction: appends that arrive
  // while one of this backend's commits is in flight wait for it and then
  // commit together, one transaction for all (each keeps its own expected
  // version check and its own result). A commit in flight longer than this
  // (stuck on a row another transaction holds) stops holding the next group
  // back. Zero: every append commits alone.
  std::chrono::milliseconds group_commit_patience{20};
  // Commits of appends in flight at once before arrivals queue for the next
  // group (at least 1). Two let one group execute while the other waits for
  // its WAL flush (bench/RESULTS.md: with one, the server idled during each
  // flush).
  std::size_t group_commit_in_flight = 2;
  // Pool of the repo that open() creates (ignored by the Repo constructor).
  repo::RepoOptions repo{};
};

// Thread-safe (Backend contract). Not copyable. Destroying it stops the
// background thread (if it started) and closes its connection; subscriptions
// keep it alive through the EventStore.
class PostgresBackend final : public Backend {
 public:
  // A backend on its own repo for `url` (postgres:// or postgresql://). The
  // URL's store parameters (repo::kStoreParameters: schema=NAME,
  // notify=listen|poll, json_data=true|false, pooling=none|transaction)
  // override `options`. Transaction pooling turns off the repo's prepared
  // statements (options.repo). Throws
  // InvalidArgument for a bad URL or option, repo::DatabaseError for
  // connectivity / authentication / schema faults.
  static std::shared_ptr<PostgresBackend> open(const repo::DatabaseUrl& url,
                                               PostgresBackendOptions options = {});
  // Convenience: open(parse_url(url), options) (open.hpp).
  static std::shared_ptr<PostgresBackend> open(std::string_view url,
                                               PostgresBackendOptions options = {});

  // A backend on `repo` (which must be PostgreSQL): its pool, its sandboxes,
  // its callers' transactions. options.repo serves only the pool of read_url
  // (if set); with transaction
  // pooling the repo must not prepare statements (InvalidArgument if its
  // PostgresOptions::prepared_statements is on). Creates or upgrades
  // the schema (options.migrate) and logs a watermark bound on a connection
  // of the repo; the background thread (a connection of its own to
  // repo.url(), or listen_url) starts later, see the notes above.
  explicit PostgresBackend(repo::Repo repo, PostgresBackendOptions options = {});
  ~PostgresBackend() override;

  std::string_view scheme() const noexcept override { return "postgres"; }

  WriteResult append(std::string_view stream_id, ExpectedVersion expected,
                     std::span<const NewEvent> events) override;
  WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                   std::span<const Uuid> event_ids) override;
  WriteResult delete_stream(std::string_view stream_id, ExpectedVersion expected,
                            DeleteMode mode) override;
  ReadResult read_stream(std::string_view stream_id, StreamVersion start, std::size_t count,
                         Direction direction) override;
  ReadResult read_all(GlobalPosition start, std::size_t count, Direction direction) override;
  GlobalPosition head_position() override;
  std::optional<StreamInfo> stream_info(std::string_view stream_id) override;
  StreamListPage list_streams(const StreamListQuery& query) override;
  void record_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> read_snapshot(std::string_view source_id) override;
  bool delete_snapshot(std::string_view source_id) override;
  std::optional<StreamVersion> load_checkpoint(std::string_view subscription,
                                               std::string_view stream_id) override;
  bool store_checkpoint(std::string_view subscription, std::string_view stream_id,
                        StreamVersion event_number, LeaseToken token) override;
  bool delete_checkpoint(std::string_view subscription, std::string_view stream_id) override;
  std::unique_ptr<SubscriptionLease> try_acquire_subscription(std::string_view subscription,
                                                              std::string_view stream_id) override;
  std::vector<StoredSubscription> list_subscriptions() override;

  // Starts the background thread if it has not started, and the first time
  // waits (up to 5 s) for its LISTEN and first watermark bound: subscribers
  // call it before they read.
  ChangeNotifier& changes() noexcept override;

  const repo::Repo& repo() const noexcept;
  const PostgresBackendOptions& options() const noexcept;

  // The application_name of the listening connection, so that pg_stat_activity
  // (and a harness cancelling the tests' work at a stop) can tell it apart.
  static constexpr std::string_view kListenerApplicationName = "gamebot eventstore listener";
  // Backend process id of the listening connection (0 while it is not
  // connected, before the background started, and in poll mode). For tests
  // that kill it.
  int listener_backend_pid() const noexcept;
  // How often the background connection was (re)established (0 before the
  // background started).
  std::uint64_t listener_connections() const noexcept;
  // Appends queued now for the next commit group. For tests and monitoring.
  std::size_t appends_waiting() const;
  // Appends that ran as members of a combined transaction (a group of two or
  // more), whatever their outcome. For tests and monitoring.
  std::uint64_t appends_grouped() const noexcept;
  // Commits of appends made outside a transaction, by how many appends each
  // carried: element n counts the commits of n appends (n >= 1; the last
  // element counts that many and more). For tests, monitoring and the bench.
  std::vector<std::uint64_t> commits_by_group_size() const;

  // Reads served by the replica (read_url), and replica faults after which
  // reads went to the primary. For tests and monitoring.
  std::uint64_t replica_reads() const noexcept;
  std::uint64_t replica_failovers() const noexcept;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gamebot::eventstore
