#pragma once

// The PostgreSQL event store's schema as a repo migration set, so the harness
// can verify it and key template databases on its hash.
//
// Objects, all inside the store's schema: tables streams, events, links,
// snapshots, subscriptions, a sequence of global positions, and the functions
// append_events, link_events, delete_stream, probe_watermark and (since
// migration 6) reserve_positions; none takes a session-level lock. The table
// gamebot_eventstore_migrations records the applied migrations. Events and
// links are append-only: triggers refuse UPDATE, DELETE and TRUNCATE on them
// outside the store's hard delete (delete_stream).

#include <cstdint>
#include <string_view>
#include <vector>

#include "gamebot/repo/migrator.hpp"

namespace gamebot::eventstore {

// Schema used when none is given.
inline constexpr std::string_view kDefaultPostgresSchema = "gamebot_eventstore";
// Table (in the store's schema) recording the applied migrations.
inline constexpr std::string_view kPostgresMigrationsTable = "gamebot_eventstore_migrations";
// SQLSTATE of a refused UPDATE, DELETE or TRUNCATE on the events or links
// table. Class 23 (integrity constraint violation), so repo::DatabaseError
// carries FaultClass::integrity.
inline constexpr std::string_view kPostgresAppendOnlySqlstate = "23GBA";

// The migrations of a store in `schema`. Object names inside are qualified
// with the schema, so the set (and its hash) differs per schema. Throws
// InvalidArgument (configuration) for a name that cannot be embedded safely
// (repo::embed_sql_name inside a function body: 1 to 63 bytes of UTF-8 without
// NUL, '$' or backslash). Migrations 1 and 2 also accept the checksums of
// their earlier released texts; migration 3 brings those stores up to date.
std::vector<repo::Migration> postgres_event_store_migrations(std::string_view schema);

// A Migrator for that set, recording into kPostgresMigrationsTable in `schema`.
repo::Migrator postgres_event_store_migrator(std::string_view schema);

// The 30-bit namespace (1 .. 2^30 - 1) of the store's advisory locks on
// writers' transactions, derived from the schema name (FNV-1a). Two schemas
// that share a namespace stay correct: their readers only wait for each
// other's writers too.
std::int32_t postgres_lock_namespace(std::string_view schema) noexcept;

// The advisory lock (bigint form) that the owner of persistent subscription
// (`subscription`, `stream_id`) of the store in `schema` holds on its own
// connection: 2^62 + a 62-bit hash, so it never meets the writers' locks
// (below 2^62). Find the owner with
//   SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
//     AND (classid::bigint << 32 | objid::bigint) = <key>.
std::int64_t postgres_subscription_lock_key(std::string_view schema, std::string_view subscription,
                                            std::string_view stream_id) noexcept;

}  // namespace gamebot::eventstore
