#include "gamebot/eventstore/sqlite_backend.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <unordered_set>

#include "change_watcher.hpp"
#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/open.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/sqlite_connection.hpp"
#include "gamebot/repo/transaction.hpp"
#include "shared_database.hpp"
#include "statements.hpp"

namespace gamebot::eventstore {

using sqlite_detail::Sql;
using sqlite_detail::Statement;
namespace col = sqlite_detail;

namespace {

std::int64_t micros(Timestamp time) noexcept {
  return time.time_since_epoch().count();
}

Timestamp from_micros(std::int64_t value) noexcept {
  return Timestamp(std::chrono::microseconds(value));
}

std::int64_t limit_of(std::size_t count) noexcept {
  return count > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(count);
}

std::optional<WriteStatus> violated(ExpectedVersion expected, bool exists,
                                    StreamVersion current) noexcept {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::any:
      return std::nullopt;
    case ExpectedVersion::Kind::no_stream:
      if (exists) return WriteStatus::stream_exists;
      return std::nullopt;
    case ExpectedVersion::Kind::stream_exists:
      if (!exists) return WriteStatus::stream_not_found;
      return std::nullopt;
    case ExpectedVersion::Kind::exact:
      if (expected.version() != current) return WriteStatus::wrong_expected_version;
      return std::nullopt;
  }
  return std::nullopt;
}

WriteResult outcome(WriteStatus status, StreamVersion version,
                    std::optional<Uuid> event_id = std::nullopt) {
  WriteResult result;
  result.status = status;
  result.version = version;
  result.event_id = event_id;
  return result;
}

bool is_busy(const repo::DatabaseError& error) noexcept {
  const int primary = error.sqlite_code() & 0xFF;
  return error.driver() == repo::Driver::sqlite &&
         (primary == SQLITE_BUSY || primary == SQLITE_LOCKED);
}

// SQLITE_BUSY/LOCKED as the typed fault the caller can act on.
[[noreturn]] void throw_busy(const repo::DatabaseError& error, bool in_caller_transaction,
                             std::chrono::milliseconds waited, std::string_view what) {
  if (in_caller_transaction || error.sqlite_code() == SQLITE_BUSY_SNAPSHOT) {
    throw repo::DatabaseError(
        FaultClass::concurrency,
        fmt::format("event store {}: the enclosing transaction cannot take SQLite's write lock "
                    "(another connection wrote first); roll it back and retry, and open it "
                    "with SqliteLocking::immediate: {}",
                    what, error.message()),
        error.details());
  }
  throw repo::DatabaseError(
      FaultClass::timeout,
      fmt::format("event store {}: the SQLite database stayed locked by another connection for "
                  "more than the busy timeout of {} ms: {}",
                  what, waited.count(), error.message()),
      error.details());
}

struct StreamRow {
  bool exists = false;
  std::int64_t seq = 0;
  Timestamp created_at{};
  std::optional<Timestamp> deleted_at;
  bool has_links = false;
  StreamVersion version = 0;
};

StreamRow stream_row(const Statement& row) {
  StreamRow out;
  if (row.is_null(0)) return out;
  out.exists = true;
  out.seq = row.integer(0);
  out.created_at = from_micros(row.integer(1));
  if (!row.is_null(2)) out.deleted_at = from_micros(row.integer(2));
  out.has_links = row.integer(3) != 0;
  out.version = row.integer(4);
  return out;
}

StreamRow load_stream(sqlite3* db, std::string_view stream_id) {
  Statement row(db, Sql::stream_row);
  row.bind_text(1, stream_id);
  if (!row.step()) return StreamRow{};
  return stream_row(row);
}

GlobalPosition head_of(sqlite3* db) {
  Statement head(db, Sql::head);
  if (!head.step()) {
    throw Error(FaultClass::schema, "eventstore_state has no row; the schema is not the store's");
  }
  return head.integer(0);
}

void insert_stream(sqlite3* db, std::string_view stream_id, bool has_links) {
  Statement insert(db, Sql::insert_stream);
  insert.bind_text(1, stream_id);
  insert.bind(2, micros(now()));
  insert.bind(3, has_links ? 1 : 0);
  insert.step();
}

// Copies the rows of a read statement out into RecordedEvents that share one
// storage block: each stream id once per run of equal ids, each type once.
// `on_row`: the statement already stands on its first row.
void collect(Statement& rows, ReadResult& out, std::size_t count, bool on_row = false) {
  EventStorageBuilder storage;
  std::string_view stream_id;
  std::vector<std::string_view> types;
  out.events.reserve(std::min<std::size_t>(count, 1024));
  while (out.events.size() < count && (on_row || rows.step())) {
    on_row = false;
    RecordedEvent& event = out.events.emplace_back();
    event.event_number = rows.integer(col::kNumber);
    event.global_position = rows.integer(col::kPosition);
    event.event_id = rows.uuid(col::kEventId);
    const std::string_view row_stream = rows.bytes(col::kStreamId);
    if (row_stream != stream_id || stream_id.empty()) stream_id = storage.keep(row_stream);
    event.stream_id = stream_id;
    event.stream_version = rows.integer(col::kStreamVersion);
    const std::string_view row_type = rows.bytes(col::kType);
    auto known = std::find(types.begin(), types.end(), row_type);
    if (known != types.end()) {
      event.type = *known;
    } else {
      event.type = storage.keep(row_type);
      if (types.size() < 8) types.push_back(event.type);
    }
    event.data = storage.keep(rows.bytes(col::kData));
    event.metadata = storage.keep(rows.bytes(col::kMetadata));
    event.causation_id = rows.optional_uuid(col::kCausationId);
    event.correlation_id = rows.optional_uuid(col::kCorrelationId);
    event.created_at = from_micros(rows.integer(col::kCreatedAt));
  }
  for (RecordedEvent& event : out.events) event.storage = storage.storage();
}

// What a write body decided about its transaction.
struct WriteControl {
  bool commit = true;   // false: roll back (a refused write leaves no trace)
  bool notify = false;  // events or streams changed: wake subscribers
};

}  // namespace

struct SqliteBackend::Impl {
  Impl(repo::Repo repo_in, SqliteBackendOptions options_in)
      : repo(std::move(repo_in)), options(options_in) {}

  repo::Repo repo;
  SqliteBackendOptions options;
  bool in_memory = false;
  std::string lock_path;  // file databases: "<database>-leases"
  std::shared_ptr<sqlite_detail::SharedDatabase> shared;
  std::unique_ptr<sqlite_detail::ChangeWatcher> watcher;

  void configure(repo::Connection& connection) const {
    sqlite_detail::configure_connection(repo::as_sqlite(connection).native_handle(),
                                        in_memory ? 0 : options.mmap_size);
  }

  // Runs body(sqlite3*, WriteControl&) in one write transaction: BEGIN
  // IMMEDIATE after this process's writer mutex, or a savepoint inside the
  // caller's transaction (or sandbox).
  template <typename Body>
  auto write(std::string_view what, Body&& body) {
    bool in_caller_transaction = false;
    try {
      repo::ConnectionLease lease = repo.acquire();
      in_caller_transaction = lease->in_transaction();
      configure(*lease);
      std::unique_lock<sqlite_detail::WriterGate> gate(shared->writer(), std::defer_lock);
      if (!in_caller_transaction && !gate.try_lock_for(options.busy_timeout)) {
        throw Error(FaultClass::timeout,
                    fmt::format("event store {}: other writers of this process held {} for more "
                                "than the busy timeout of {} ms",
                                what, shared->key(), options.busy_timeout.count()));
      }
      repo::TransactionOptions immediate;
      immediate.sqlite_locking = repo::SqliteLocking::immediate;
      repo::Transaction tx(std::move(lease), immediate);
      sqlite3* db = repo::as_sqlite(tx.connection()).native_handle();
      WriteControl control;
      auto result = body(db, control);
      if (control.commit) {
        tx.commit();
      } else {
        tx.rollback();
      }
      if (gate.owns_lock()) gate.unlock();
      if (control.notify) shared->notify_all();
      return result;
    } catch (const repo::DatabaseError& error) {
      if (!is_busy(error)) throw;
      throw_busy(error, in_caller_transaction, options.busy_timeout, what);
    }
  }

  // Runs body(sqlite3*) on the context's connection; `snapshot`: inside one
  // read transaction (several statements that must agree).
  template <typename Body>
  auto read(std::string_view what, bool snapshot, Body&& body) {
    bool in_caller_transaction = false;
    try {
      repo::ConnectionLease lease = repo.acquire();
      in_caller_transaction = lease->in_transaction();
      configure(*lease);
      if (!snapshot) return body(repo::as_sqlite(*lease).native_handle());
      repo::Transaction tx(std::move(lease));
      auto result = body(repo::as_sqlite(tx.connection()).native_handle());
      tx.commit();
      return result;
    } catch (const repo::DatabaseError& error) {
      if (!is_busy(error)) throw;
      throw_busy(error, in_caller_transaction, options.busy_timeout, what);
    }
  }
};

std::shared_ptr<SqliteBackend> SqliteBackend::open(std::string_view url,
                                                   SqliteBackendOptions options) {
  return open(parse_url(url), options);
}

std::shared_ptr<SqliteBackend> SqliteBackend::open(const repo::DatabaseUrl& parsed,
                                                   SqliteBackendOptions options) {
  if (parsed.driver() != repo::Driver::sqlite) {
    throw InvalidArgument(fmt::format("'{}' is not an sqlite: URL", parsed.redacted()));
  }
  if (auto busy = parsed.parameter("busy_timeout")) {
    try {
      options.busy_timeout = std::chrono::milliseconds(std::stoll(*busy));
    } catch (const std::exception&) {
      throw InvalidArgument(
          fmt::format("busy_timeout '{}' in '{}' is not a number of ms", *busy, parsed.redacted()));
    }
  }
  repo::RepoOptions repo_options;
  // One connection for an in-memory database (see the header); a pool for files.
  repo_options.pool.max_size =
      parsed.sqlite_in_memory() ? 1 : std::max<std::size_t>(options.pool_size, 1);
  repo_options.pool.checkout_timeout = std::max(options.busy_timeout, std::chrono::milliseconds(1));
  repo_options.pool.connect.sqlite.busy_timeout = options.busy_timeout;
  return std::make_shared<SqliteBackend>(repo::Repo::open(parsed, repo_options), options);
}

SqliteBackend::SqliteBackend(repo::Repo repo, SqliteBackendOptions options)
    : impl_(std::make_unique<Impl>(std::move(repo), options)) {
  Impl& s = *impl_;
  if (s.repo.driver() != repo::Driver::sqlite) {
    throw InvalidArgument(
        fmt::format("SqliteBackend needs an SQLite repo, got {}", s.repo.url().redacted()));
  }
  const repo::DatabaseUrl& url = s.repo.url();
  try {
    repo::ConnectionLease lease = s.repo.acquire("eventstore schema");
    const repo::Migrator migrator = sqlite_event_store_migrator();
    if (options.migrate) {
      migrator.migrate(*lease);
    } else {
      migrator.require_current(*lease);
    }
  } catch (const repo::DatabaseError& error) {
    if (!is_busy(error)) throw;
    throw_busy(error, false, options.busy_timeout, "schema migration");
  }

  s.in_memory = url.sqlite_in_memory();
  std::string key;
  if (s.in_memory) {
    key = "memdb:" + url.sqlite_shared_name();
  } else {
    std::error_code ignored;
    std::filesystem::path path = std::filesystem::canonical(url.sqlite_path(), ignored);
    if (path.empty()) path = std::filesystem::absolute(url.sqlite_path());
    key = path.string();
    s.lock_path = key + "-leases";
  }
  s.shared = sqlite_detail::SharedDatabase::of(key);
  s.shared->attach(&changes());

  if (options.watch_interval.count() > 0 && !(s.in_memory && url.sqlite_shared_name().empty())) {
    repo::SqliteOptions watcher_options;
    // A locked database skips a tick instead of stalling the watcher.
    watcher_options.busy_timeout = std::chrono::milliseconds(0);
    watcher_options.statement_cache_capacity = 1;
    try {
      s.watcher = std::make_unique<sqlite_detail::ChangeWatcher>(
          repo::SqliteConnection::open(url, watcher_options), options.watch_interval,
          [this] { changes().notify(); });
    } catch (...) {
      s.shared->detach(&changes());
      throw;
    }
  }
}

SqliteBackend::~SqliteBackend() {
  impl_->watcher.reset();
  impl_->shared->detach(&changes());
}

const repo::Repo& SqliteBackend::repo() const noexcept {
  return impl_->repo;
}

const SqliteBackendOptions& SqliteBackend::options() const noexcept {
  return impl_->options;
}

// ---- writes -------------------------------------------------------------------

WriteResult SqliteBackend::append(std::string_view stream_id, ExpectedVersion expected,
                                  std::span<const NewEvent> events) {
  return impl_->write("append", [&](sqlite3* db, WriteControl& control) {
    StreamRow stream;
    GlobalPosition first = 0;
    {
      Statement row(db, Sql::stream_row_and_head);
      row.bind_text(1, stream_id);
      if (!row.step()) {
        throw Error(FaultClass::schema,
                    "eventstore_state has no row; the schema is not the store's");
      }
      stream = stream_row(row);
      first = row.integer(5) + 1;
    }
    if (stream.deleted_at) return outcome(WriteStatus::stream_deleted, stream.version);
    if (auto status = violated(expected, stream.exists, stream.version)) {
      return outcome(*status, stream.version);
    }
    if (events.empty()) return outcome(WriteStatus::ok, stream.version);

    if (!stream.exists) insert_stream(db, stream_id, false);
    Statement insert(db, Sql::insert_event);
    insert.bind_text(3, stream_id);  // bindings survive reset(): bound once
    for (std::size_t i = 0; i < events.size(); ++i) {
      const NewEvent& e = events[i];
      insert.bind(1, first + static_cast<GlobalPosition>(i));
      insert.bind_uuid(2, e.id);
      insert.bind(4, stream.version + static_cast<StreamVersion>(i) + 1);
      insert.bind_text(5, e.type);
      insert.bind_blob(6, e.data);
      insert.bind_blob(7, e.metadata);
      insert.bind_uuid(8, e.causation_id);
      insert.bind_uuid(9, e.correlation_id);
      insert.bind(10, micros(e.created_at));
      const int code = insert.step_code();
      if (code != SQLITE_DONE) {
        if (code == SQLITE_CONSTRAINT_UNIQUE &&
            std::string_view(sqlite3_errmsg(db)).find("eventstore_events.event_id") !=
                std::string_view::npos) {
          control.commit = false;  // drops the events and the stream inserted so far
          return outcome(WriteStatus::duplicate_event_id, stream.version, e.id);
        }
        insert.fail(code);
      }
      insert.reset();
    }
    control.notify = true;
    WriteResult result =
        outcome(WriteStatus::ok, stream.version + static_cast<StreamVersion>(events.size()));
    result.first_position = first;
    result.last_position = first + static_cast<GlobalPosition>(events.size()) - 1;
    return result;
  });
}

WriteResult SqliteBackend::link(std::string_view stream_id, ExpectedVersion expected,
                                std::span<const Uuid> event_ids) {
  return impl_->write("link", [&](sqlite3* db, WriteControl& control) {
    const StreamRow stream = load_stream(db, stream_id);
    if (stream.deleted_at) return outcome(WriteStatus::stream_deleted, stream.version);
    if (auto status = violated(expected, stream.exists, stream.version)) {
      return outcome(*status, stream.version);
    }
    if (event_ids.empty()) return outcome(WriteStatus::ok, stream.version);

    std::vector<GlobalPosition> positions;
    positions.reserve(event_ids.size());
    std::unordered_set<GlobalPosition> in_batch;
    {
      Statement find(db, Sql::find_event);
      std::optional<Statement> present;
      if (stream.has_links) present.emplace(db, Sql::link_present);
      for (const Uuid& id : event_ids) {
        find.bind_uuid(1, id);
        if (!find.step()) return outcome(WriteStatus::event_not_found, stream.version, id);
        const GlobalPosition position = find.integer(0);
        const bool own = find.text(1) == stream_id;
        find.reset();
        bool duplicate = own || !in_batch.insert(position).second;
        if (!duplicate && present) {
          present->bind_text(1, stream_id);
          present->bind(2, position);
          duplicate = present->step();
          present->reset();
        }
        if (duplicate) return outcome(WriteStatus::duplicate_event_id, stream.version, id);
        positions.push_back(position);
      }
    }
    if (!stream.exists) {
      insert_stream(db, stream_id, true);
    } else if (!stream.has_links) {
      Statement mark(db, Sql::set_has_links);
      mark.bind(1, stream.seq);
      mark.step();
    }
    Statement insert(db, Sql::insert_link);
    insert.bind_text(1, stream_id);
    for (std::size_t i = 0; i < positions.size(); ++i) {
      insert.bind(2, stream.version + static_cast<StreamVersion>(i) + 1);
      insert.bind(3, positions[i]);
      insert.step();
      insert.reset();
    }
    control.notify = true;
    return outcome(WriteStatus::ok, stream.version + static_cast<StreamVersion>(positions.size()));
  });
}

WriteResult SqliteBackend::delete_stream(std::string_view stream_id, ExpectedVersion expected,
                                         DeleteMode mode) {
  return impl_->write("delete_stream", [&](sqlite3* db, WriteControl& control) {
    const StreamRow stream = load_stream(db, stream_id);
    if (!stream.exists) return outcome(WriteStatus::stream_not_found, 0);
    if (mode == DeleteMode::soft && stream.deleted_at) {
      return outcome(WriteStatus::stream_deleted, stream.version);
    }
    if (auto status = violated(expected, true, stream.version)) {
      return outcome(*status, stream.version);
    }
    if (mode == DeleteMode::soft) {
      Statement soft(db, Sql::soft_delete);
      soft.bind(1, stream.seq);
      soft.bind(2, micros(now()));
      soft.step();
    } else {
      Statement(db, Sql::raise_high_water).step();
      // The append-only triggers' guard, open only around the two deletes
      // (an error rolls the whole write back, the guard with it).
      Statement(db, Sql::open_delete_guard).step();
      Statement events(db, Sql::delete_stream_events);
      events.bind_text(1, stream_id);
      events.step();
      Statement links(db, Sql::delete_stream_links);
      links.bind_text(1, stream_id);
      links.step();
      Statement(db, Sql::close_delete_guard).step();
      Statement row(db, Sql::delete_stream_row);
      row.bind(1, stream.seq);
      row.step();
    }
    control.notify = true;
    return outcome(WriteStatus::ok, stream.version);
  });
}

// ---- reads --------------------------------------------------------------------

ReadResult SqliteBackend::read_stream(std::string_view stream_id, StreamVersion start,
                                      std::size_t count, Direction direction) {
  const bool forward = direction == Direction::forward;
  // One statement: the stream row and its events. A stream with links (rare)
  // takes the path below, which needs two statements in one snapshot.
  std::optional<ReadResult> plain = impl_->read("read_stream", false, [&](sqlite3* db) {
    std::optional<ReadResult> result(std::in_place);
    Statement rows(db, forward ? Sql::read_stream_row_forward : Sql::read_stream_row_backward);
    rows.bind_text(1, stream_id);
    rows.bind(2, start);
    rows.bind(3, std::max<std::int64_t>(limit_of(count), 1));
    if (!rows.step()) {
      result->status = ReadStatus::stream_not_found;
    } else if (!rows.is_null(col::kStreamDeletedAt)) {
      result->status = ReadStatus::stream_deleted;
    } else if (rows.integer(col::kStreamHasLinks) != 0) {
      result.reset();
    } else if (!rows.is_null(col::kPosition)) {
      collect(rows, *result, count, true);
    }
    return result;
  });
  if (plain) return std::move(*plain);
  return impl_->read("read_stream", true, [&](sqlite3* db) {
    ReadResult result;
    const StreamRow stream = load_stream(db, stream_id);
    if (!stream.exists) {
      result.status = ReadStatus::stream_not_found;
      return result;
    }
    if (stream.deleted_at) {
      result.status = ReadStatus::stream_deleted;
      return result;
    }
    if (count == 0) return result;
    const Sql which = stream.has_links
                          ? (forward ? Sql::read_linked_forward : Sql::read_linked_backward)
                          : (forward ? Sql::read_stream_forward : Sql::read_stream_backward);
    Statement rows(db, which);
    rows.bind_text(1, stream_id);
    rows.bind(2, start);
    rows.bind(3, limit_of(count));
    collect(rows, result, count);
    return result;
  });
}

ReadResult SqliteBackend::read_all(GlobalPosition start, std::size_t count, Direction direction) {
  return impl_->read("read_all", false, [&](sqlite3* db) {
    ReadResult result;
    if (count == 0) return result;
    Statement rows(
        db, direction == Direction::forward ? Sql::read_all_forward : Sql::read_all_backward);
    rows.bind(1, start);
    rows.bind(2, limit_of(count));
    collect(rows, result, count);
    return result;
  });
}

GlobalPosition SqliteBackend::head_position() {
  return impl_->read("head_position", false, [](sqlite3* db) { return head_of(db); });
}

std::optional<StreamInfo> SqliteBackend::stream_info(std::string_view stream_id) {
  return impl_->read("stream_info", false, [&](sqlite3* db) -> std::optional<StreamInfo> {
    const StreamRow stream = load_stream(db, stream_id);
    if (!stream.exists) return std::nullopt;
    StreamInfo info;
    info.stream_id = std::string(stream_id);
    info.version = stream.version;
    info.created_at = stream.created_at;
    info.deleted_at = stream.deleted_at;
    info.sequence = stream.seq;
    return info;
  });
}

StreamListPage SqliteBackend::list_streams(const StreamListQuery& query) {
  const std::size_t limit = std::max<std::size_t>(query.limit, 1);
  return impl_->read("list_streams", false, [&](sqlite3* db) {
    StreamListPage page;
    Statement rows(
        db, query.order == Direction::forward ? Sql::list_streams : Sql::list_streams_backward);
    rows.bind(1, query.after_sequence);
    rows.bind_blob(2, query.prefix);
    rows.bind(3, limit_of(limit) == std::numeric_limits<std::int64_t>::max() ? limit_of(limit)
                                                                             : limit_of(limit) + 1);
    while (rows.step()) {
      if (page.streams.size() == limit) {
        page.next_after = page.streams.back().sequence;
        break;
      }
      StreamInfo& info = page.streams.emplace_back();
      info.sequence = rows.integer(0);
      info.stream_id = std::string(rows.text(1));
      info.created_at = from_micros(rows.integer(2));
      if (!rows.is_null(3)) info.deleted_at = from_micros(rows.integer(3));
      info.version = rows.integer(4);
    }
    return page;
  });
}

// ---- snapshots ----------------------------------------------------------------

void SqliteBackend::record_snapshot(const Snapshot& snapshot) {
  impl_->write("record_snapshot", [&](sqlite3* db, WriteControl&) {
    Statement upsert(db, Sql::upsert_snapshot);
    upsert.bind_text(1, snapshot.source_id);
    upsert.bind(2, snapshot.source_version);
    upsert.bind_text(3, snapshot.source_type);
    upsert.bind_blob(4, snapshot.data);
    upsert.bind_blob(5, snapshot.metadata);
    upsert.bind(6, micros(snapshot.created_at));
    upsert.step();
    return 0;
  });
}

std::optional<Snapshot> SqliteBackend::read_snapshot(std::string_view source_id) {
  return impl_->read("read_snapshot", false, [&](sqlite3* db) -> std::optional<Snapshot> {
    Statement row(db, Sql::read_snapshot);
    row.bind_text(1, source_id);
    if (!row.step()) return std::nullopt;
    Snapshot snapshot;
    snapshot.source_id = std::string(source_id);
    snapshot.source_version = row.integer(0);
    snapshot.source_type = std::string(row.text(1));
    snapshot.data = std::string(row.blob(2));
    snapshot.metadata = std::string(row.blob(3));
    snapshot.created_at = from_micros(row.integer(4));
    return snapshot;
  });
}

bool SqliteBackend::delete_snapshot(std::string_view source_id) {
  return impl_->write("delete_snapshot", [&](sqlite3* db, WriteControl&) {
    Statement remove(db, Sql::delete_snapshot);
    remove.bind_text(1, source_id);
    remove.step();
    return remove.changes() > 0;
  });
}

// ---- persistent subscriptions ---------------------------------------------------

std::optional<StreamVersion> SqliteBackend::load_checkpoint(std::string_view subscription,
                                                            std::string_view stream_id) {
  return impl_->read("load_checkpoint", false, [&](sqlite3* db) -> std::optional<StreamVersion> {
    Statement row(db, Sql::load_checkpoint);
    row.bind_text(1, subscription);
    row.bind_text(2, stream_id);
    if (!row.step()) return std::nullopt;
    return row.integer(0);
  });
}

bool SqliteBackend::store_checkpoint(std::string_view subscription, std::string_view stream_id,
                                     StreamVersion event_number, LeaseToken token) {
  return impl_->write("store_checkpoint", [&](sqlite3* db, WriteControl&) {
    Statement upsert(db, Sql::store_checkpoint);
    upsert.bind_text(1, subscription);
    upsert.bind_text(2, stream_id);
    upsert.bind(3, event_number);
    upsert.bind(4, token);
    upsert.step();
    return upsert.changes() > 0;
  });
}

bool SqliteBackend::delete_checkpoint(std::string_view subscription, std::string_view stream_id) {
  return impl_->write("delete_checkpoint", [&](sqlite3* db, WriteControl&) {
    Statement remove(db, Sql::delete_checkpoint);
    remove.bind_text(1, subscription);
    remove.bind_text(2, stream_id);
    remove.step();
    return remove.changes() > 0;
  });
}

std::unique_ptr<SubscriptionLease> SqliteBackend::try_acquire_subscription(
    std::string_view subscription, std::string_view stream_id) {
  std::string key = sqlite_detail::lease_key(subscription, stream_id);
  std::unique_ptr<SubscriptionLease> lease =
      impl_->in_memory
          ? sqlite_detail::try_claim_in_process(impl_->shared, std::move(key))
          : sqlite_detail::try_lock_across_processes(impl_->shared, impl_->lock_path, key);
  if (!lease) return nullptr;
  // A fresh token, recorded with a stored checkpoint in the same transaction,
  // so the previous holder's next write is refused.
  lease->set_token(impl_->write("take_lease_token", [&](sqlite3* db, WriteControl&) {
    Statement take(db, Sql::take_lease_token);
    take.step();
    const LeaseToken token = take.integer(0);
    take.reset();
    Statement mark(db, Sql::mark_lease_token);
    mark.bind_text(1, subscription);
    mark.bind_text(2, stream_id);
    mark.bind(3, token);
    mark.step();
    return token;
  }));
  return lease;
}

std::vector<StoredSubscription> SqliteBackend::list_subscriptions() {
  std::vector<StoredSubscription> out = impl_->read("list_subscriptions", false, [&](sqlite3* db) {
    std::vector<StoredSubscription> rows;
    Statement list(db, Sql::list_checkpoints);
    while (list.step()) {
      StoredSubscription& row = rows.emplace_back();
      row.name = std::string(list.text(0));
      row.stream_id = std::string(list.text(1));
      row.checkpoint = list.integer(2);
      row.lease_token = list.integer(3);
    }
    return rows;
  });
  for (StoredSubscription& row : out) {
    const std::string key = sqlite_detail::lease_key(row.name, row.stream_id);
    row.held = impl_->in_memory ? impl_->shared->claimed(key)
                                : sqlite_detail::locked_across_processes(impl_->lock_path, key);
  }
  return out;
}

}  // namespace gamebot::eventstore
