#pragma once

// The SQL of the SQLite backend and a per-connection cache of its prepared
// statements, used through the native handle of repo's SqliteConnection.
//
// Why not repo's Connection::query: the hot paths (append, reads) bind and
// read ten columns per event, and must hand out BLOB bytes without copying
// them twice; the native API does that at raw-sqlite3 speed.
//
// Lifetime: statements are prepared on a connection the first time they are
// used on it and live until the connection closes: the cache installs an
// SQLITE_TRACE_CLOSE hook (sqlite3_trace_v2) that finalizes them at the start
// of sqlite3_close, on the closing thread. One cache per sqlite3 handle, shared
// by every SqliteBackend (the SQL text is the same for all of them).
// Thread safety: a connection is used by one thread at a time (repo's rule);
// the process-wide map from handle to cache is guarded by a mutex.

#include <cstdint>
#include <optional>
#include <string_view>

#include "gamebot/core/uuid.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace gamebot::eventstore::sqlite_detail {

enum class Sql : int {
  stream_row,
  stream_row_and_head,
  head,
  insert_stream,
  set_has_links,
  insert_event,
  insert_link,
  find_event,
  link_present,
  read_all_forward,
  read_all_backward,
  read_stream_forward,
  read_stream_backward,
  read_stream_row_forward,
  read_stream_row_backward,
  read_linked_forward,
  read_linked_backward,
  soft_delete,
  raise_high_water,
  open_delete_guard,
  close_delete_guard,
  delete_stream_events,
  delete_stream_links,
  delete_stream_row,
  list_streams,
  list_streams_backward,
  upsert_snapshot,
  read_snapshot,
  delete_snapshot,
  load_checkpoint,
  store_checkpoint,
  delete_checkpoint,
  list_checkpoints,
  take_lease_token,
  mark_lease_token,
  data_version,
  count_
};

// Columns of the read statements: 0 the event_number, then the event.
enum EventColumn : int {
  kNumber = 0,
  kPosition,
  kEventId,
  kStreamId,
  kStreamVersion,
  kType,
  kData,
  kMetadata,
  kCausationId,
  kCorrelationId,
  kCreatedAt,
  // read_stream_row_*: the stream row's columns after the event's.
  kStreamDeletedAt,
  kStreamHasLinks,
};

std::string_view sql_text(Sql which) noexcept;

// Applies the backend's per-connection settings (PRAGMA mmap_size when
// `mmap_bytes` > 0) the first time a backend uses `db`; later calls only look
// the connection up. Throws repo::DatabaseError.
void configure_connection(sqlite3* db, std::int64_t mmap_bytes);

// One use of a cached statement on `db`: bind, step, read columns. The
// destructor resets it (releasing its read snapshot). Bound text and blobs are
// not copied: they must stay valid until the statement is stepped for the
// last time or destroyed. Errors throw repo::DatabaseError classified as repo
// does (SQLITE_BUSY stays a retryable concurrency error for the caller to map).
class Statement {
 public:
  Statement(sqlite3* db, Sql which);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int index, std::int64_t value);
  void bind_null(int index);
  void bind_text(int index, std::string_view text);
  // Empty bytes are bound as an empty blob, never NULL.
  void bind_blob(int index, std::string_view bytes);
  void bind_uuid(int index, const Uuid& id);
  void bind_uuid(int index, const std::optional<Uuid>& id);

  // Makes the statement ready to be bound and stepped again (bindings stay).
  void reset() noexcept;
  // True when a row is available, false when done. Throws on errors.
  bool step();
  // The raw result of sqlite3_step (SQLITE_ROW, SQLITE_DONE or an extended
  // error code), for callers that turn a constraint violation into a value.
  int step_code();
  // Throws the DatabaseError of error code `code` (after step_code()).
  [[noreturn]] void fail(int code) const;
  // Rows changed by the last step of a write.
  std::int64_t changes() const noexcept;

  bool is_null(int column) const noexcept;
  std::int64_t integer(int column) const noexcept;
  std::string_view text(int column) const noexcept;
  std::string_view blob(int column) const noexcept;
  // The bytes of a text or blob column as stored (no conversion), with one
  // column call: the hot read path's accessor.
  std::string_view bytes(int column) const noexcept;
  // A 16-byte blob; anything else is FaultClass::integrity.
  Uuid uuid(int column) const;
  std::optional<Uuid> optional_uuid(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  Sql which_;
  bool* busy_;  // the cache slot's in-use flag; nullptr for a temporary copy (the
                // cached one was in use), which is finalized here
};

}  // namespace gamebot::eventstore::sqlite_detail
