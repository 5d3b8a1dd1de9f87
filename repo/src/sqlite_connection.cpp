#include "gamebot/repo/sqlite_connection.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/logging.hpp"
#include "time_format.hpp"

namespace gamebot::repo {
namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

std::string snippet(std::string_view sql) {
  constexpr std::size_t limit = 160;
  std::string out(sql.substr(0, limit));
  for (char& c : out) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (sql.size() > limit) out += "...";
  return out;
}

std::string constraint_from_message(int code, std::string_view message) {
  if ((code & 0xFF) != SQLITE_CONSTRAINT) return {};
  std::size_t colon = message.find("failed: ");
  if (colon == std::string_view::npos) return {};
  return std::string(message.substr(colon + 8));
}

[[noreturn]] void throw_sqlite(int code, std::string_view message, std::string_view sql) {
  DatabaseErrorDetails details;
  details.driver = Driver::sqlite;
  details.sqlite_code = code;
  details.constraint = constraint_from_message(code, message);
  details.transaction_retryable = sqlite_transaction_retryable(code);
  std::string text =
      sql.empty() ? std::string(message) : fmt::format("{} [in: {}]", message, snippet(sql));
  throw DatabaseError(classify_sqlite(code, message), std::move(text), std::move(details));
}

[[noreturn]] void throw_db(sqlite3* db, std::string_view sql) {
  throw_sqlite(sqlite3_extended_errcode(db), sqlite3_errmsg(db), sql);
}

[[noreturn]] void throw_usage(std::string message) {
  DatabaseErrorDetails details;
  details.driver = Driver::sqlite;
  throw DatabaseError(FaultClass::internal, std::move(message), std::move(details));
}

class SqliteCursor;

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  std::string sql;
  std::vector<int> slot_args;  // slot (0-based) -> argument index
  int arg_count = 0;
  bool read_only = false;  // sqlite3_stmt_readonly: never changes rows
  std::uint64_t last_used = 0;
  bool busy = false;
  bool temporary = false;
  std::unique_ptr<SqliteCursor> cursor;
  ~Statement() { sqlite3_finalize(stmt); }
};

std::string_view storage_name(int type) {
  switch (type) {
    case SQLITE_INTEGER:
      return "integer";
    case SQLITE_FLOAT:
      return "real";
    case SQLITE_TEXT:
      return "text";
    case SQLITE_BLOB:
      return "blob";
    default:
      return "null";
  }
}

class SqliteCursor final : public internal::Cursor {
 public:
  explicit SqliteCursor(Statement* statement) : statement_(statement) {}

  void start(bool has_row, std::int64_t changes) {
    pending_first_ = true;
    has_row_ = has_row;
    done_ = !has_row;
    changes_ = changes;
    column_count_ = sqlite3_column_count(statement_->stmt);
  }

  bool next() override {
    if (pending_first_) {
      pending_first_ = false;
      return has_row_;
    }
    if (done_) return false;
    int rc = sqlite3_step(statement_->stmt);
    if (rc == SQLITE_ROW) return true;
    done_ = true;
    if (rc == SQLITE_DONE) return false;
    sqlite3* db = sqlite3_db_handle(statement_->stmt);
    throw_db(db, statement_->sql);
  }
  std::string_view column_name(int column) const noexcept override {
    const char* name = sqlite3_column_name(statement_->stmt, column);
    return name ? name : "";
  }
  std::string type_name(int column) const override {
    return std::string(storage_name(type(column)));
  }
  bool is_null(int column) const override { return type(column) == SQLITE_NULL; }
  bool get_bool(int column) const override {
    if (type(column) != SQLITE_INTEGER) mismatch(column, "bool");
    std::int64_t value = sqlite3_column_int64(statement_->stmt, column);
    if (value != 0 && value != 1)
      bad_value(column, fmt::format("{} is not a boolean (0/1)", value));
    return value == 1;
  }
  std::int64_t get_int64(int column) const override {
    int t = type(column);
    if (t == SQLITE_INTEGER) return sqlite3_column_int64(statement_->stmt, column);
    if (t == SQLITE_FLOAT) {
      double value = sqlite3_column_double(statement_->stmt, column);
      if (std::trunc(value) != value || value < -9.2233720368547758e18 ||
          value >= 9.2233720368547758e18) {
        bad_value(column, fmt::format("real value {} is not an integer", value));
      }
      return static_cast<std::int64_t>(value);
    }
    mismatch(column, "an integer");
  }
  double get_double(int column) const override {
    int t = type(column);
    if (t == SQLITE_FLOAT || t == SQLITE_INTEGER) {
      return sqlite3_column_double(statement_->stmt, column);
    }
    mismatch(column, "double");
  }
  std::string get_string(int column) const override { return std::string(get_text_view(column)); }
  std::string_view get_text_view(int column) const override {
    if (type(column) != SQLITE_TEXT) mismatch(column, "text");
    const auto* text = sqlite3_column_text(statement_->stmt, column);
    int size = sqlite3_column_bytes(statement_->stmt, column);
    return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
  }
  std::span<const std::uint8_t> get_bytes_view(int column) const override {
    int t = type(column);
    if (t != SQLITE_BLOB && t != SQLITE_TEXT) mismatch(column, "bytes");
    const void* data = t == SQLITE_BLOB ? sqlite3_column_blob(statement_->stmt, column)
                                        : sqlite3_column_text(statement_->stmt, column);
    int size = sqlite3_column_bytes(statement_->stmt, column);
    return {static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
  }
  Uuid get_uuid(int column) const override {
    int t = type(column);
    if (t == SQLITE_BLOB) {
      int size = sqlite3_column_bytes(statement_->stmt, column);
      if (size != 16) bad_value(column, fmt::format("blob of {} bytes is not a UUID", size));
      Uuid::Bytes bytes{};
      std::memcpy(bytes.data(), sqlite3_column_blob(statement_->stmt, column), 16);
      return Uuid(bytes);
    }
    if (t == SQLITE_TEXT) {
      auto parsed = Uuid::parse(get_text_view(column));
      if (!parsed) bad_value(column, "text is not a UUID");
      return *parsed;
    }
    mismatch(column, "uuid");
  }
  Timestamp get_timestamp(int column) const override {
    int t = type(column);
    std::int64_t micros = 0;
    if (t == SQLITE_INTEGER) {
      micros = sqlite3_column_int64(statement_->stmt, column);
    } else if (t == SQLITE_TEXT) {
      auto parsed = internal::parse_timestamp(get_text_view(column));
      if (!parsed) bad_value(column, "text is not an ISO 8601 timestamp");
      micros = *parsed;
    } else {
      mismatch(column, "timestamp");
    }
    return Timestamp(
        std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(micros)));
  }
  std::int64_t affected_rows() const noexcept override { return changes_; }
  void release() noexcept override;

 private:
  int type(int column) const { return sqlite3_column_type(statement_->stmt, column); }

  Statement* statement_;
  bool pending_first_ = false;
  bool has_row_ = false;
  bool done_ = true;
  std::int64_t changes_ = 0;
};

void SqliteCursor::release() noexcept {
  Statement* statement = statement_;
  sqlite3_reset(statement->stmt);
  statement->busy = false;
  if (statement->temporary) delete statement;  // also deletes this cursor
}

int to_journal_sync_level(SqliteSynchronous level) {
  return static_cast<int>(level);
}

}  // namespace

class SqliteConnection::Impl {
 public:
  sqlite3* db = nullptr;
  SqliteOptions options;
  std::unordered_map<std::string, std::unique_ptr<Statement>, StringHash, std::equal_to<>> cache;
  std::uint64_t tick = 0;
  Statement* last = nullptr;  // most recently used cached statement

  ~Impl() {
    last = nullptr;
    cache.clear();
    if (db != nullptr) sqlite3_close_v2(db);
  }

  Statement* statement(std::string_view sql) {
    // Fast path: the same SQL as the previous call (loops of one statement) skips hashing.
    if (last != nullptr && !last->busy && last->sql.size() == sql.size() &&
        std::memcmp(last->sql.data(), sql.data(), sql.size()) == 0) {
      last->last_used = ++tick;
      return last;
    }
    auto it = cache.find(sql);
    if (it != cache.end() && !it->second->busy) {
      it->second->last_used = ++tick;
      last = it->second.get();
      return last;
    }
    auto fresh = prepare(sql);
    if (it != cache.end()) {  // the cached one is in use by an open Result
      fresh->temporary = true;
      return fresh.release();
    }
    if (cache.size() >= options.statement_cache_capacity) evict();
    Statement* raw = fresh.get();
    raw->last_used = ++tick;
    cache.emplace(std::string(sql), std::move(fresh));
    last = raw;
    return raw;
  }

  void evict() {
    auto victim = cache.end();
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->second->busy) continue;
      if (victim == cache.end() || it->second->last_used < victim->second->last_used) victim = it;
    }
    if (victim != cache.end()) {
      if (victim->second.get() == last) last = nullptr;
      cache.erase(victim);
    }
  }

  std::unique_ptr<Statement> prepare(std::string_view sql) {
    auto statement = std::make_unique<Statement>();
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &statement->stmt, &tail);
    if (rc != SQLITE_OK) throw_db(db, sql);
    if (statement->stmt == nullptr) throw_usage("empty SQL statement");
    std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
      throw_usage(fmt::format(
          "several statements in one call; use execute_batch for scripts [in: {}]", snippet(sql)));
    }
    statement->sql = std::string(sql);
    statement->read_only = sqlite3_stmt_readonly(statement->stmt) != 0;
    int slots = sqlite3_bind_parameter_count(statement->stmt);
    statement->slot_args.resize(static_cast<std::size_t>(slots));
    for (int slot = 1; slot <= slots; ++slot) {
      const char* name = sqlite3_bind_parameter_name(statement->stmt, slot);
      int arg = slot - 1;
      if (name != nullptr) {
        std::string_view n(name);
        int number = 0;
        auto [ptr, ec] = std::from_chars(n.data() + 1, n.data() + n.size(), number);
        if ((n[0] != '$' && n[0] != '?') || ec != std::errc() || ptr != n.data() + n.size() ||
            number < 1) {
          throw_usage(fmt::format("named parameter '{}' is not supported; use $1..$n [in: {}]", n,
                                  snippet(sql)));
        }
        arg = number - 1;
      }
      statement->slot_args[static_cast<std::size_t>(slot - 1)] = arg;
      statement->arg_count = std::max(statement->arg_count, arg + 1);
    }
    statement->cursor = std::make_unique<SqliteCursor>(statement.get());
    return statement;
  }

  void bind(Statement& statement, std::span<const Param> params, bool copy) {
    if (static_cast<int>(params.size()) != statement.arg_count) {
      throw_usage(fmt::format("statement takes {} parameters, {} given [in: {}]",
                              statement.arg_count, params.size(), snippet(statement.sql)));
    }
    auto lifetime = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
    sqlite3_stmt* stmt = statement.stmt;
    int slot = 1;
    for (int arg : statement.slot_args) {
      const Param& p = params[static_cast<std::size_t>(arg)];
      int rc = SQLITE_OK;
      switch (p.type()) {
        case Param::Type::null:
          rc = sqlite3_bind_null(stmt, slot);
          break;
        case Param::Type::boolean:
          rc = sqlite3_bind_int(stmt, slot, p.as_bool() ? 1 : 0);
          break;
        case Param::Type::int64:
        case Param::Type::timestamp:
          rc = sqlite3_bind_int64(stmt, slot, p.as_int64());
          break;
        case Param::Type::float64:
          rc = sqlite3_bind_double(stmt, slot, p.as_double());
          break;
        case Param::Type::text: {
          auto text = p.as_text();
          rc = sqlite3_bind_text64(stmt, slot, text.data(), text.size(), lifetime, SQLITE_UTF8);
          break;
        }
        case Param::Type::bytes: {
          auto bytes = p.as_bytes();
          rc = bytes.empty()
                   ? sqlite3_bind_zeroblob(stmt, slot, 0)
                   : sqlite3_bind_blob64(stmt, slot, bytes.data(), bytes.size(), lifetime);
          break;
        }
        case Param::Type::uuid: {
          auto id = p.as_uuid();
          rc = sqlite3_bind_blob(stmt, slot, id.bytes().data(), 16, SQLITE_TRANSIENT);
          break;
        }
      }
      if (rc != SQLITE_OK) throw_db(db, statement.sql);
      ++slot;
    }
  }

  // Steps once; returns true when a row is available. Throws (statement reset) on errors.
  bool first_step(Statement& statement) {
    int rc = sqlite3_step(statement.stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    int code = sqlite3_extended_errcode(db);
    std::string message = sqlite3_errmsg(db);
    sqlite3_reset(statement.stmt);
    throw_sqlite(code, message, statement.sql);
  }
};

namespace {

void apply_pragma(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw_sqlite(sqlite3_extended_errcode(db), message, sql);
  }
}

// Switching a file to WAL needs an exclusive lock, and SQLite may answer SQLITE_BUSY at once
// without calling the busy handler while another connection opens the same new file; retried
// here within the busy timeout so concurrent openers never see the race.
void apply_pragma_waiting(sqlite3* db, const std::string& sql, std::int64_t busy_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_ms);
  for (;;) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return;
    const bool busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
    if (busy && std::chrono::steady_clock::now() < deadline) {
      sqlite3_free(error);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    std::string message = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw_sqlite(sqlite3_extended_errcode(db), message, sql);
  }
}

}  // namespace

std::unique_ptr<SqliteConnection> SqliteConnection::open(const DatabaseUrl& url,
                                                         const SqliteOptions& options) {
  if (url.driver() != Driver::sqlite) {
    throw gamebot::Error(FaultClass::configuration,
                         "SqliteConnection::open needs a sqlite: URL, got " + url.redacted());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.statement_cache_capacity == 0) impl->options.statement_cache_capacity = 1;

  int flags = SQLITE_OPEN_NOMUTEX;
  auto mode = url.parameter("mode");
  bool read_only = mode && *mode == "ro";
  if (read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else if ((mode && *mode == "rw") || (!mode && !options.create_if_missing)) {
    flags |= SQLITE_OPEN_READWRITE;
  } else {
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }
  std::string filename;
  const char* vfs = nullptr;
  if (url.sqlite_in_memory()) {
    if (url.sqlite_shared_name().empty()) {
      filename = ":memory:";
    } else {
      filename = "/" + url.sqlite_shared_name();
      vfs = "memdb";
    }
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  } else {
    filename = url.sqlite_path();
  }
  int rc = sqlite3_open_v2(filename.c_str(), &impl->db, flags, vfs);
  if (rc != SQLITE_OK) {
    int code = impl->db ? sqlite3_extended_errcode(impl->db) : rc;
    std::string message = impl->db ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc);
    throw_sqlite(code, fmt::format("cannot open {}: {}", url.describe_target(), message), {});
  }
  sqlite3_extended_result_codes(impl->db, 1);

  std::int64_t busy_ms = options.busy_timeout.count();
  if (auto value = url.parameter("busy_timeout")) busy_ms = std::stoll(*value);
  sqlite3_busy_timeout(impl->db, static_cast<int>(std::min<std::int64_t>(busy_ms, INT32_MAX)));

  bool foreign_keys = options.foreign_keys;
  if (auto value = url.parameter("foreign_keys")) {
    foreign_keys = *value == "on" || *value == "true" || *value == "1";
  }
  apply_pragma(impl->db, foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF");

  if (!url.sqlite_in_memory() && !read_only) {
    std::string journal = options.wal ? "wal" : "";
    if (auto value = url.parameter("journal_mode")) journal = *value;
    if (!journal.empty()) apply_pragma_waiting(impl->db, "PRAGMA journal_mode=" + journal, busy_ms);
  }
  static constexpr const char* kSync[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
  std::string sync = kSync[to_journal_sync_level(options.synchronous)];
  if (auto value = url.parameter("synchronous")) sync = *value;
  // In-memory databases have nothing to sync; skipping the PRAGMA also keeps opening a
  // connection from needing a lock another connection's write transaction may hold.
  if (!url.sqlite_in_memory()) apply_pragma(impl->db, "PRAGMA synchronous=" + sync);

  return std::unique_ptr<SqliteConnection>(new SqliteConnection(url, std::move(impl)));
}

SqliteConnection::SqliteConnection(DatabaseUrl url, std::unique_ptr<Impl> impl)
    : Connection(std::move(url)), impl_(std::move(impl)) {}

SqliteConnection::~SqliteConnection() = default;

std::int64_t SqliteConnection::execute_params(std::string_view sql, std::span<const Param> params) {
  Statement* statement = impl_->statement(sql);
  struct Release {
    Statement* s;
    ~Release() {
      sqlite3_reset(s->stmt);
      s->busy = false;
      if (s->temporary) delete s;
    }
  } release{statement};
  statement->busy = true;
  impl_->bind(*statement, params, false);
  while (impl_->first_step(*statement)) {
  }
  return statement->read_only ? 0 : sqlite3_changes64(impl_->db);
}

Result SqliteConnection::query_params(std::string_view sql, std::span<const Param> params) {
  Statement* statement = impl_->statement(sql);
  statement->busy = true;
  bool has_row = false;
  try {
    impl_->bind(*statement, params, true);
    has_row = impl_->first_step(*statement);
  } catch (...) {
    statement->cursor->release();
    throw;
  }
  std::int64_t changes = has_row || statement->read_only ? 0 : sqlite3_changes64(impl_->db);
  statement->cursor->start(has_row, changes);
  return Result(statement->cursor.get());
}

void SqliteConnection::execute_batch(std::string_view sql) {
  std::string script(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(impl_->db, script.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(impl_->db);
    sqlite3_free(error);
    throw_sqlite(sqlite3_extended_errcode(impl_->db), message, sql);
  }
}

void SqliteConnection::ping() {
  execute("SELECT 1");
}

bool SqliteConnection::is_alive() noexcept {
  return impl_->db != nullptr && !broken();
}

bool SqliteConnection::in_transaction() const noexcept {
  return sqlite3_get_autocommit(impl_->db) == 0;
}

std::size_t SqliteConnection::cached_statements() const noexcept {
  return impl_->cache.size();
}

void SqliteConnection::clear_statement_cache() {
  impl_->last = nullptr;
  for (auto it = impl_->cache.begin(); it != impl_->cache.end();) {
    if (it->second->busy) {
      ++it;
    } else {
      it = impl_->cache.erase(it);
    }
  }
}

sqlite3* SqliteConnection::native_handle() const noexcept {
  return impl_->db;
}

std::int64_t SqliteConnection::last_insert_rowid() const noexcept {
  return sqlite3_last_insert_rowid(impl_->db);
}

void SqliteConnection::run_control(std::string_view sql) {
  execute_params(sql, {});
}

SqliteConnection& as_sqlite(Connection& connection) {
  if (connection.driver() != Driver::sqlite) {
    throw std::logic_error("as_sqlite: connection #" + std::to_string(connection.id()) + " is a " +
                           std::string(to_string(connection.driver())) + " connection");
  }
  return static_cast<SqliteConnection&>(connection);
}

}  // namespace gamebot::repo
