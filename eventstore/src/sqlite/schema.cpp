// The SQLite backend's schema as repo migrations.
//
// Tables (timestamps are INTEGER microseconds since the Unix epoch; ids are
// 16-byte BLOBs):
// * eventstore_events: one row per event; `position` (the rowid) is the global
//   position. Unique indexes on event_id (the duplicate check) and on
//   (stream_id, stream_version) (stream reads, and a second guard on versions).
// * eventstore_streams: one row per live or soft-deleted stream; `seq`
//   (AUTOINCREMENT, never reused) is the creation order that list_streams pages
//   by. The version is not stored: it is the newest own event or link, so an
//   append does not rewrite the stream row.
// * eventstore_links: stream entries that refer to another stream's event by
//   position; a link whose event was hard-deleted stays as a hole.
// * eventstore_state: one row; high_water = the highest position ever assigned
//   at the time of the last hard delete, so positions are never reused.
// * eventstore_snapshots, eventstore_checkpoints.
// * Migration 2: fencing tokens of subscription leases (backend.hpp):
//   eventstore_lease_tokens counts the tokens taken; each checkpoint row keeps
//   the token of the lease that wrote it or took the subscription since.
// * Migration 3: eventstore_events and eventstore_links are append-only.
//   Triggers refuse every UPDATE, and a DELETE unless the one row of
//   eventstore_delete_guard is open; only the store's hard delete opens it, and
//   closes it again inside the same write transaction, so no other connection
//   ever sees it open (a rollback closes it too). A refusal is
//   SQLITE_CONSTRAINT_TRIGGER (FaultClass::integrity in repo).

#include "gamebot/eventstore/sqlite_backend.hpp"

namespace gamebot::eventstore {

std::vector<repo::Migration> sqlite_event_store_migrations() {
  return {
      {1, "create_event_store",
       R"sql(
CREATE TABLE eventstore_streams (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER,
  has_links INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE eventstore_events (
  position INTEGER PRIMARY KEY,
  event_id BLOB NOT NULL,
  stream_id TEXT NOT NULL,
  stream_version INTEGER NOT NULL,
  type TEXT NOT NULL,
  data BLOB NOT NULL,
  metadata BLOB NOT NULL,
  causation_id BLOB,
  correlation_id BLOB,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX eventstore_events_event_id ON eventstore_events (event_id);
CREATE UNIQUE INDEX eventstore_events_stream ON eventstore_events (stream_id, stream_version);
CREATE TABLE eventstore_links (
  stream_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
CREATE INDEX eventstore_links_position ON eventstore_links (stream_id, position);
CREATE TABLE eventstore_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  high_water INTEGER NOT NULL
);
INSERT INTO eventstore_state (id, high_water) VALUES (1, 0);
CREATE TABLE eventstore_snapshots (
  source_id TEXT PRIMARY KEY,
  source_version INTEGER NOT NULL,
  source_type TEXT NOT NULL,
  data BLOB NOT NULL,
  metadata BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE eventstore_checkpoints (
  subscription TEXT NOT NULL,
  stream_id TEXT NOT NULL,
  event_number INTEGER NOT NULL,
  PRIMARY KEY (subscription, stream_id)
) WITHOUT ROWID;
)sql"},
      {2, "fence_subscription_leases",
       R"sql(
CREATE TABLE eventstore_lease_tokens (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last_token INTEGER NOT NULL
);
INSERT INTO eventstore_lease_tokens (id, last_token) VALUES (1, 0);
ALTER TABLE eventstore_checkpoints ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
)sql"},
      {3, "append_only_events",
       R"sql(
CREATE TABLE eventstore_delete_guard (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  open INTEGER NOT NULL CHECK (open IN (0, 1))
);
INSERT INTO eventstore_delete_guard (id, open) VALUES (1, 0);
CREATE TRIGGER eventstore_events_no_update BEFORE UPDATE ON eventstore_events
BEGIN
  SELECT RAISE(ABORT, 'UPDATE on eventstore_events is refused: the event store is append-only');
END;
CREATE TRIGGER eventstore_events_no_delete BEFORE DELETE ON eventstore_events
WHEN (SELECT open FROM eventstore_delete_guard WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'DELETE on eventstore_events is refused: the event store is append-only (hard delete only)');
END;
CREATE TRIGGER eventstore_links_no_update BEFORE UPDATE ON eventstore_links
BEGIN
  SELECT RAISE(ABORT, 'UPDATE on eventstore_links is refused: the event store is append-only');
END;
CREATE TRIGGER eventstore_links_no_delete BEFORE DELETE ON eventstore_links
WHEN (SELECT open FROM eventstore_delete_guard WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'DELETE on eventstore_links is refused: the event store is append-only (hard delete only)');
END;
)sql"},
  };
}

repo::MigratorOptions sqlite_event_store_migrator_options() {
  repo::MigratorOptions options;
  // Its own table, so an application's migrations in the same file never
  // collide with the store's version numbers.
  options.table = "eventstore_schema_migrations";
  return options;
}

repo::Migrator sqlite_event_store_migrator() {
  return repo::Migrator(sqlite_event_store_migrations(), sqlite_event_store_migrator_options());
}

}  // namespace gamebot::eventstore
