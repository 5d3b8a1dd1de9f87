#pragma once

// The SQLite event-store backend (the embedded default), built on gamebot::repo.
//
// Open it with eventstore::open("sqlite:path.db"), open("sqlite::memory:"), or
// construct it on a caller's repo::Repo (to share the pool, a test sandbox, or
// an application transaction: the outbox pattern).
//
// How it keeps the Backend contract (backend.hpp):
// * Every operation runs on Repo::acquire()'s connection, so inside a caller's
//   open transaction (or a sandbox) appends and reads join it as savepoints and
//   commit or roll back with it.
// * Writes are one transaction each: BEGIN IMMEDIATE, so writers serialize on
//   SQLite's write lock (in one process they first queue on a mutex per
//   database file, which is fairer and faster than SQLite's sleeping busy
//   handler). A writer that cannot get the lock within busy_timeout gets a
//   gamebot::Error with FaultClass::timeout; SQLITE_BUSY never leaks out.
//   Expected-version races (also across processes) are therefore checked under
//   the lock and come out as wrong_expected_version results.
// * Global positions are assigned inside the write transaction (highest
//   position + 1, or past a high-water mark kept when a hard delete removes the
//   newest events), so they commit in order (no-skip rule) and are never
//   reused. A stream's version is derived from its newest event or link, so a
//   single-event append writes only the event row and its two index entries.
// * Live notification: a commit by this backend wakes every backend of the
//   same database in this process at once; commits by other processes (and by
//   a caller's transaction that committed later) are noticed by a background
//   thread watching PRAGMA data_version on a dedicated connection every
//   watch_interval (a read of the WAL index header, no table access).
// * Persistent-subscription ownership across processes: an open-file-
//   description lock (fcntl F_OFD_SETLK) on one byte of the sidecar file
//   "<database>-leases", at an offset taken from a SHA-256 of (name, stream).
//   The kernel releases it when the holder closes it or dies, so a crashed
//   owner never blocks a standby. In-memory databases (private to a process)
//   use a process-local table instead. Checkpoints live in a table.
// * sqlite::memory: a Repo opened from such a URL gets a pool-private named
//   in-memory database (the repo's memdb VFS); the backend limits that pool to
//   ONE connection, so all operations see one database and never contend on
//   SQLite's rollback-journal locks (a memdb has no WAL). Consequence: a caller
//   holding that connection in a long transaction makes other threads wait for
//   the pool (checkout timeout, then pool_exhausted).
//
// Outbox: open the caller's transaction with repo::SqliteLocking::immediate
// (TransactionOptions::sqlite_locking). In a deferred transaction that has
// already read, SQLite cannot wait for the write lock; such an append fails at
// once with FaultClass::concurrency (retry the caller's transaction).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/eventstore/backend.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::eventstore {

struct SqliteBackendOptions {
  // Longest wait for the write lock (this process's writers, then SQLite's
  // busy handler for other processes) before a FaultClass::timeout error. Also
  // the busy_timeout of connections the backend opens itself.
  std::chrono::milliseconds busy_timeout{5000};
  // How often the change watcher checks PRAGMA data_version for commits made
  // through other connections (other processes, a caller's later commit).
  // Zero disables the watcher: then only this process's appends wake
  // subscribers at once, others after StoreOptions::poll_interval.
  std::chrono::milliseconds watch_interval{10};
  // Connections of the pool that open() creates for a file database (an
  // in-memory database always gets one; see the header comment).
  std::size_t pool_size = 8;
  // Bytes of a database file that connections read through a memory map
  // (PRAGMA mmap_size, set on each connection the first time the backend uses
  // it): reads skip a system call and a copy per page. 0 turns it off; not used
  // for in-memory databases.
  std::int64_t mmap_size = std::int64_t{1} << 30;
  // Apply pending schema migrations on construction; false only verifies and
  // throws a schema fault if the database is not current.
  bool migrate = true;
};

// Thread-safe (Backend contract). Not copyable. Destroying it stops the
// watcher thread; open subscriptions keep it alive through the EventStore.
class SqliteBackend final : public Backend {
 public:
  // Opens `url` ("sqlite:path.db", "sqlite:///abs/path.db", "sqlite::memory:",
  // with repo's query parameters such as ?busy_timeout=MS) on a pool of its
  // own. Throws InvalidArgument for a non-sqlite URL, repo::DatabaseError
  // (configuration, schema, ...) when the database cannot be opened or migrated.
  static std::shared_ptr<SqliteBackend> open(const repo::DatabaseUrl& url,
                                             SqliteBackendOptions options = {});
  // Convenience: open(parse_url(url), options) (open.hpp); a malformed URL is
  // InvalidArgument.
  static std::shared_ptr<SqliteBackend> open(std::string_view url,
                                             SqliteBackendOptions options = {});

  // A backend on `repo` (must be an SQLite repo; InvalidArgument otherwise).
  // Migrates (or verifies) the schema through repo.acquire(), so inside a
  // sandbox the schema change is rolled back with it. Copies of `repo` share
  // its pool and routing.
  explicit SqliteBackend(repo::Repo repo, SqliteBackendOptions options = {});
  ~SqliteBackend() override;

  std::string_view scheme() const noexcept override { return "sqlite"; }

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

  // The repo every operation goes through (for application writes in the same
  // transaction as appends).
  const repo::Repo& repo() const noexcept;
  const SqliteBackendOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The schema of the SQLite backend as repo migrations (tables eventstore_*),
// recorded in the table sqlite_event_store_migrator_options().table. The
// harness keys templates on sqlite_event_store_migrator().set_hash().
std::vector<repo::Migration> sqlite_event_store_migrations();
repo::MigratorOptions sqlite_event_store_migrator_options();
repo::Migrator sqlite_event_store_migrator();

}  // namespace gamebot::eventstore
