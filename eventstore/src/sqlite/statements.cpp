#include "statements.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gamebot/repo/errors.hpp"

namespace gamebot::eventstore::sqlite_detail {

namespace {

// The newest version of stream `s`: its newest own event or link (a stream
// exists only with at least one).
#define GB_STREAM_VERSION                                                                \
  "max(coalesce((SELECT e.stream_version FROM eventstore_events e WHERE e.stream_id = "  \
  "s.stream_id ORDER BY e.stream_version DESC LIMIT 1), 0), CASE WHEN s.has_links THEN " \
  "coalesce((SELECT l.version FROM eventstore_links l WHERE l.stream_id = s.stream_id "  \
  "ORDER BY l.version DESC LIMIT 1), 0) ELSE 0 END)"

#define GB_EVENT_COLUMNS                                                                \
  "e.position, e.event_id, e.stream_id, e.stream_version, e.type, e.data, e.metadata, " \
  "e.causation_id, e.correlation_id, e.created_at"

constexpr std::array<std::string_view, static_cast<std::size_t>(Sql::count_)> kSql = {
    // stream_row
    "SELECT s.seq, s.created_at, s.deleted_at, s.has_links, " GB_STREAM_VERSION
    " FROM eventstore_streams s WHERE s.stream_id = ?1",
    // stream_row_and_head: stream_row's columns (NULL when the stream does not
    // exist) and head's value, in one step for appends
    "SELECT s.seq, s.created_at, s.deleted_at, s.has_links, " GB_STREAM_VERSION
    ", h.head FROM (SELECT max(coalesce((SELECT position FROM eventstore_events ORDER BY "
    "position DESC LIMIT 1), 0), high_water) AS head FROM eventstore_state WHERE id = 1) h LEFT "
    "JOIN eventstore_streams s ON s.stream_id = ?1",
    // head: the next position is this + 1
    "SELECT max(coalesce((SELECT position FROM eventstore_events ORDER BY position DESC LIMIT 1), "
    "0), high_water) FROM eventstore_state WHERE id = 1",
    // insert_stream
    "INSERT INTO eventstore_streams (stream_id, created_at, has_links) VALUES (?1, ?2, ?3)",
    // set_has_links
    "UPDATE eventstore_streams SET has_links = 1 WHERE seq = ?1",
    // insert_event
    "INSERT INTO eventstore_events (position, event_id, stream_id, stream_version, type, data, "
    "metadata, causation_id, correlation_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
    "?9, ?10)",
    // insert_link
    "INSERT INTO eventstore_links (stream_id, version, position) VALUES (?1, ?2, ?3)",
    // find_event
    "SELECT position, stream_id FROM eventstore_events WHERE event_id = ?1",
    // link_present
    "SELECT 1 FROM eventstore_links WHERE stream_id = ?1 AND position = ?2 LIMIT 1",
    // read_all_forward
    "SELECT e.position, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.position >= ?1 ORDER BY e.position LIMIT ?2",
    // read_all_backward
    "SELECT e.position, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.position <= ?1 ORDER BY e.position DESC LIMIT ?2",
    // read_stream_forward
    "SELECT e.stream_version, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.stream_id = ?1 AND e.stream_version >= ?2 ORDER BY "
    "e.stream_version LIMIT ?3",
    // read_stream_backward
    "SELECT e.stream_version, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.stream_id = ?1 AND e.stream_version <= ?2 ORDER BY "
    "e.stream_version DESC LIMIT ?3",
    // read_stream_row_forward: the stream row with its events (NULL event
    // columns when it has none in range; no row when it does not exist)
    "SELECT e.stream_version, " GB_EVENT_COLUMNS
    ", s.deleted_at, s.has_links FROM eventstore_streams s LEFT JOIN eventstore_events e ON "
    "e.stream_id = s.stream_id AND e.stream_version >= ?2 WHERE s.stream_id = ?1 ORDER BY "
    "e.stream_version LIMIT ?3",
    // read_stream_row_backward
    "SELECT e.stream_version, " GB_EVENT_COLUMNS
    ", s.deleted_at, s.has_links FROM eventstore_streams s LEFT JOIN eventstore_events e ON "
    "e.stream_id = s.stream_id AND e.stream_version <= ?2 WHERE s.stream_id = ?1 ORDER BY "
    "e.stream_version DESC LIMIT ?3",
    // read_linked_forward: own events and links, merged by version
    "SELECT e.stream_version AS n, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.stream_id = ?1 AND e.stream_version >= ?2 UNION ALL "
    "SELECT l.version AS n, " GB_EVENT_COLUMNS
    " FROM eventstore_links l JOIN eventstore_events e ON e.position = l.position WHERE "
    "l.stream_id = ?1 AND l.version >= ?2 ORDER BY 1 LIMIT ?3",
    // read_linked_backward
    "SELECT e.stream_version AS n, " GB_EVENT_COLUMNS
    " FROM eventstore_events e WHERE e.stream_id = ?1 AND e.stream_version <= ?2 UNION ALL "
    "SELECT l.version AS n, " GB_EVENT_COLUMNS
    " FROM eventstore_links l JOIN eventstore_events e ON e.position = l.position WHERE "
    "l.stream_id = ?1 AND l.version <= ?2 ORDER BY 1 DESC LIMIT ?3",
    // soft_delete
    "UPDATE eventstore_streams SET deleted_at = ?2 WHERE seq = ?1",
    // raise_high_water: before a hard delete, so positions are never reused
    "UPDATE eventstore_state SET high_water = max(high_water, coalesce((SELECT position FROM "
    "eventstore_events ORDER BY position DESC LIMIT 1), 0)) WHERE id = 1",
    // open_delete_guard: lets the append-only triggers (migration 3) pass the
    // hard delete's own deletes; closed again in the same transaction
    "UPDATE eventstore_delete_guard SET open = 1 WHERE id = 1",
    // close_delete_guard
    "UPDATE eventstore_delete_guard SET open = 0 WHERE id = 1",
    // delete_stream_events
    "DELETE FROM eventstore_events WHERE stream_id = ?1",
    // delete_stream_links
    "DELETE FROM eventstore_links WHERE stream_id = ?1",
    // delete_stream_row
    "DELETE FROM eventstore_streams WHERE seq = ?1",
    // list_streams: ?2 is the prefix as a blob (byte-wise, no LIKE wildcards)
    "SELECT s.seq, s.stream_id, s.created_at, s.deleted_at, " GB_STREAM_VERSION
    " FROM eventstore_streams s WHERE s.seq > ?1 AND substr(CAST(s.stream_id AS BLOB), 1, "
    "length(?2)) = ?2 ORDER BY s.seq LIMIT ?3",
    // list_streams_backward: the same, newest first, before ?1 (0: from the newest)
    "SELECT s.seq, s.stream_id, s.created_at, s.deleted_at, " GB_STREAM_VERSION
    " FROM eventstore_streams s WHERE (?1 = 0 OR s.seq < ?1) AND substr(CAST(s.stream_id AS "
    "BLOB), 1, length(?2)) = ?2 ORDER BY s.seq DESC LIMIT ?3",
    // upsert_snapshot
    "INSERT INTO eventstore_snapshots (source_id, source_version, source_type, data, metadata, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source_id) DO UPDATE SET "
    "source_version = excluded.source_version, source_type = excluded.source_type, data = "
    "excluded.data, metadata = excluded.metadata, created_at = excluded.created_at",
    // read_snapshot
    "SELECT source_version, source_type, data, metadata, created_at FROM eventstore_snapshots "
    "WHERE source_id = ?1",
    // delete_snapshot
    "DELETE FROM eventstore_snapshots WHERE source_id = ?1",
    // load_checkpoint
    "SELECT event_number FROM eventstore_checkpoints WHERE subscription = ?1 AND stream_id = ?2",
    // store_checkpoint: refused (no change) when a newer lease token is stored;
    // never moves the checkpoint backwards
    "INSERT INTO eventstore_checkpoints (subscription, stream_id, event_number, lease_token) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (subscription, stream_id) DO UPDATE SET event_number = "
    "max(event_number, excluded.event_number), lease_token = excluded.lease_token "
    "WHERE lease_token <= excluded.lease_token",
    // delete_checkpoint
    "DELETE FROM eventstore_checkpoints WHERE subscription = ?1 AND stream_id = ?2",
    // list_checkpoints: byte order (BINARY collation)
    "SELECT subscription, stream_id, event_number, lease_token FROM eventstore_checkpoints ORDER "
    "BY subscription, stream_id",
    // take_lease_token
    "UPDATE eventstore_lease_tokens SET last_token = last_token + 1 WHERE id = 1 "
    "RETURNING last_token",
    // mark_lease_token
    "UPDATE eventstore_checkpoints SET lease_token = ?3 WHERE subscription = ?1 AND stream_id = ?2",
    // data_version
    "PRAGMA data_version",
};

#undef GB_STREAM_VERSION
#undef GB_EVENT_COLUMNS

[[noreturn]] void throw_sqlite(int code, std::string_view message, std::string_view sql) {
  repo::DatabaseErrorDetails details;
  details.driver = repo::Driver::sqlite;
  details.sqlite_code = code;
  details.transaction_retryable = repo::sqlite_transaction_retryable(code);
  if ((code & 0xFF) == SQLITE_CONSTRAINT) {
    const std::size_t at = message.find("failed: ");
    if (at != std::string_view::npos) details.constraint = std::string(message.substr(at + 8));
  }
  std::string snippet(sql.substr(0, 120));
  if (sql.size() > 120) snippet += "...";
  throw repo::DatabaseError(repo::classify_sqlite(code, message),
                            fmt::format("{} [in: {}]", message, snippet), std::move(details));
}

struct Slot {
  sqlite3_stmt* stmt = nullptr;
  bool busy = false;
};

struct ConnectionStatements {
  std::array<Slot, static_cast<std::size_t>(Sql::count_)> slots{};
  bool configured = false;
  ~ConnectionStatements() {
    for (Slot& slot : slots) sqlite3_finalize(slot.stmt);
  }
};

struct Registry {
  std::mutex mutex;
  std::unordered_map<sqlite3*, std::unique_ptr<ConnectionStatements>> connections;
};

// Never destroyed: connections may close during static destruction.
Registry& registry() {
  static Registry* instance = new Registry;
  return *instance;
}

int on_trace(unsigned type, void*, void* handle, void*) {
  if (type != SQLITE_TRACE_CLOSE) return 0;
  std::unique_ptr<ConnectionStatements> closing;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.connections.find(static_cast<sqlite3*>(handle));
    if (it == r.connections.end()) return 0;
    closing = std::move(it->second);
    r.connections.erase(it);
  }
  return 0;  // `closing` finalizes the statements here, before the close goes on
}

ConnectionStatements& statements_of(sqlite3* db) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto& entry = r.connections[db];
  if (!entry) {
    entry = std::make_unique<ConnectionStatements>();
    sqlite3_trace_v2(db, SQLITE_TRACE_CLOSE, &on_trace, nullptr);
  }
  return *entry;
}

sqlite3_stmt* prepare(sqlite3* db, Sql which) {
  const std::string_view sql = sql_text(which);
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    throw_sqlite(sqlite3_extended_errcode(db), sqlite3_errmsg(db), sql);
  }
  return stmt;
}

}  // namespace

std::string_view sql_text(Sql which) noexcept {
  return kSql[static_cast<std::size_t>(which)];
}

void configure_connection(sqlite3* db, std::int64_t mmap_bytes) {
  ConnectionStatements& statements = statements_of(db);
  if (statements.configured) return;
  if (mmap_bytes > 0) {
    const std::string pragma = fmt::format("PRAGMA mmap_size={}", mmap_bytes);
    char* error = nullptr;
    if (sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : sqlite3_errmsg(db);
      sqlite3_free(error);
      throw_sqlite(sqlite3_extended_errcode(db), message, pragma);
    }
  }
  statements.configured = true;
}

Statement::Statement(sqlite3* db, Sql which)
    : db_(db), stmt_(nullptr), which_(which), busy_(nullptr) {
  Slot& slot = statements_of(db).slots[static_cast<std::size_t>(which)];
  if (slot.busy) {
    stmt_ = prepare(db, which);
    return;
  }
  if (slot.stmt == nullptr) slot.stmt = prepare(db, which);
  slot.busy = true;
  stmt_ = slot.stmt;
  // The slot outlives this object: the caller holds the connection, and only
  // its close removes the cache.
  busy_ = &slot.busy;
}

Statement::~Statement() {
  sqlite3_reset(stmt_);
  if (busy_ == nullptr) {
    sqlite3_finalize(stmt_);
  } else {
    *busy_ = false;
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
}

void Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
}

void Statement::bind_text(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(), SQLITE_STATIC,
                      SQLITE_UTF8);
}

void Statement::bind_blob(int index, std::string_view bytes) {
  if (bytes.empty()) {
    sqlite3_bind_zeroblob(stmt_, index, 0);
  } else {
    sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC);
  }
}

void Statement::bind_uuid(int index, const Uuid& id) {
  sqlite3_bind_blob(stmt_, index, id.bytes().data(), 16, SQLITE_STATIC);
}

void Statement::bind_uuid(int index, const std::optional<Uuid>& id) {
  if (id) {
    bind_uuid(index, *id);
  } else {
    sqlite3_bind_null(stmt_, index);
  }
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(rc);
}

int Statement::step_code() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
  return sqlite3_extended_errcode(db_);
}

void Statement::fail(int code) const {
  const int extended = sqlite3_extended_errcode(db_);
  throw_sqlite((extended & 0xFF) == (code & 0xFF) ? extended : code, sqlite3_errmsg(db_),
               sql_text(which_));
}

std::int64_t Statement::changes() const noexcept {
  return sqlite3_changes64(db_);
}

bool Statement::is_null(int column) const noexcept {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::integer(int column) const noexcept {
  return sqlite3_column_int64(stmt_, column);
}

std::string_view Statement::text(int column) const noexcept {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? std::string_view()
                         : std::string_view(data, static_cast<std::size_t>(size));
}

std::string_view Statement::blob(int column) const noexcept {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? std::string_view()
                         : std::string_view(data, static_cast<std::size_t>(size));
}

std::string_view Statement::bytes(int column) const noexcept {
  // sqlite3_column_value hands out the statement's own (unprotected) value:
  // fine, because a connection is only ever used by one thread at a time.
  sqlite3_value* value = sqlite3_column_value(stmt_, column);
  const auto* data = static_cast<const char*>(sqlite3_value_blob(value));
  const int size = sqlite3_value_bytes(value);
  return data == nullptr ? std::string_view()
                         : std::string_view(data, static_cast<std::size_t>(size));
}

Uuid Statement::uuid(int column) const {
  const std::optional<Uuid> id = optional_uuid(column);
  if (!id) {
    throw Error(FaultClass::integrity,
                fmt::format("column {} of an event row is NULL, not a UUID [in: {}]", column,
                            sql_text(which_).substr(0, 80)));
  }
  return *id;
}

std::optional<Uuid> Statement::optional_uuid(int column) const {
  // One column call on the hot path: NULL (and an empty blob) have no pointer.
  sqlite3_value* value = sqlite3_column_value(stmt_, column);
  const void* data = sqlite3_value_blob(value);
  const int size = sqlite3_value_bytes(value);
  if (data == nullptr && sqlite3_value_type(value) == SQLITE_NULL) return std::nullopt;
  if (size != 16) {
    throw Error(FaultClass::integrity,
                fmt::format("column {} of an event row holds {} bytes, not a 16-byte UUID [in: {}]",
                            column, size, sql_text(which_).substr(0, 80)));
  }
  Uuid::Bytes raw;
  std::memcpy(raw.data(), data, 16);
  return Uuid(raw);
}

}  // namespace gamebot::eventstore::sqlite_detail
