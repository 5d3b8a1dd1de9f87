#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gamebot::repo {

// What a database URL names: one of the SQL drivers of gamebot::repo, or the event store's
// in-process memory backend (which has no SQL connection; repo refuses to connect to it).
enum class Driver {
  sqlite,    // sqlite3 C API, a file or an in-memory database
  postgres,  // libpq
  memory,    // memory: (the event store's in-process backend; no repo connection)
};

// Stable lower-case name ("sqlite", "postgres", "memory").
std::string_view to_string(Driver driver) noexcept;

// Every libpq connection keyword whose value is a secret: the ones libpq itself marks as
// hidden (PQconninfoOption::dispchar "*"; PostgreSQL 18 docs, "Parameter Key Words").
// oauth_client_secret is new in libpq 18; listed so a newer libpq never shows it.
// Their values are never rendered by redacted(), describe_target() or an error message.
inline constexpr std::array<std::string_view, 3> kSecretKeywords = {"password", "sslpassword",
                                                                    "oauth_client_secret"};
bool is_secret_keyword(std::string_view key) noexcept;

// The event store's own parameters in a postgres URL (schema=NAME, notify=listen|poll,
// json_data=true|false, pooling=none|transaction: whether a pooler in transaction mode, such as
// PgBouncer, stands between the store and the server). They are kept apart from libpq's
// keywords (store_parameter()) and never passed to libpq.
inline constexpr std::array<std::string_view, 4> kStoreParameters = {"schema", "notify",
                                                                     "json_data", "pooling"};

// A parsed database location: the one parser of database URLs and the one redactor of their
// secrets. Schemes are case-insensitive (SQLite:, POSTGRES://). Accepted forms:
//   memory:                     (also memory://; the event store's in-process backend)
//   sqlite:relative/path.db   sqlite:/absolute/path.db   sqlite:///absolute/path.db
//   sqlite::memory:            (private in-memory database of one connection)
//   sqlite::memory:?shared=NAME (in-memory database shared by this process's connections
//                                that use the same NAME; it lives while one is open)
//   postgres://user:password@host:5432/dbname?param=value   (also postgresql://)
//     host may be a percent-encoded unix-socket directory (%2Ftmp%2Fpg) or be given as
//     ?host=/tmp/pg; several hosts as h1:5432,h2:5433; [::1] for IPv6
//   libpq key=value strings: "host=/tmp/pg port=5432 dbname=app user=me password='x y'"
// SQLite query parameters: mode=ro|rw|rwc, busy_timeout=MS, synchronous=off|normal|full|extra,
// journal_mode=wal|delete|truncate|persist|memory|off, foreign_keys=on|off, shared=NAME.
// PostgreSQL parameters: any libpq connection keyword (application_name, connect_timeout,
// sslmode, options, ...) and the store parameters above; unknown keywords are rejected.
//
// The password and every kSecretKeywords value are secrets: redacted(), to_string() and
// describe_target() never contain them, nor does any error message built by this class.
// Regular value type; thread-compatible.
class DatabaseUrl {
 public:
  // Parses `text`. Throws gamebot::Error(configuration) naming the malformed part (scheme,
  // path, user, host, port, database, parameter name) without echoing the password.
  static DatabaseUrl parse(std::string_view text);
  // An SQLite file URL for `path` (no parsing of the path).
  static DatabaseUrl sqlite_file(std::string path);
  // An SQLite in-memory URL; a non-empty `shared_name` makes it a shared in-memory database.
  static DatabaseUrl sqlite_memory(std::string shared_name = {});

  Driver driver() const noexcept { return driver_; }

  // SQLite: the file path (empty for in-memory databases).
  const std::string& sqlite_path() const noexcept { return path_; }
  bool sqlite_in_memory() const noexcept { return in_memory_; }
  // SQLite: the shared in-memory database name, empty for a private one or a file.
  const std::string& sqlite_shared_name() const noexcept { return shared_name_; }

  // PostgreSQL parts; empty means "libpq default" (PGHOST, PGUSER, ... or built-ins).
  const std::string& user() const noexcept { return user_; }
  // Comma-separated host list as libpq takes it; a host starting with '/' is a socket dir.
  const std::string& host() const noexcept { return host_; }
  // Comma-separated port list, one per host or a single one for all.
  const std::string& port() const noexcept { return port_; }
  const std::string& database() const noexcept { return database_; }
  bool has_password() const noexcept { return password_.has_value(); }
  // The secret. Only drivers should read it; never log it.
  const std::string& password() const noexcept;
  // The values of every secret (password and kSecretKeywords parameters), non-empty ones.
  std::vector<std::string> secrets() const;
  // `text` with every occurrence of one of secrets() replaced by "***": for messages that a
  // server or library wrote and that might quote what it was given.
  std::string scrub(std::string text) const;

  // Other parameters in the order given (SQLite options or libpq keywords).
  const std::vector<std::pair<std::string, std::string>>& parameters() const noexcept {
    return parameters_;
  }
  std::optional<std::string> parameter(std::string_view key) const;
  // PostgreSQL: a store parameter (kStoreParameters) if the URL sets it. json_data is
  // normalised to "true" or "false".
  std::optional<std::string> store_parameter(std::string_view key) const;

  // A copy naming another database: PostgreSQL dbname, SQLite file path (or, for an
  // in-memory URL, the shared name).
  DatabaseUrl with_database(std::string database) const;
  // A copy with `key` set to `value` (replacing an earlier value). PostgreSQL: a libpq keyword
  // ("password" sets the secret); SQLite: one of the query parameters above. Throws
  // gamebot::Error(configuration) for an unknown key.
  DatabaseUrl with_parameter(std::string_view key, std::string value) const;

  // Canonical URL text with every secret replaced by "***"; safe to log.
  std::string redacted() const;
  std::string to_string() const { return redacted(); }
  // Human-readable target for diagnostics: "host /tmp/pg port 5432 user app database app"
  // or "sqlite file /path/db" — never the password.
  std::string describe_target() const;

  friend bool operator==(const DatabaseUrl&, const DatabaseUrl&) = default;

 private:
  Driver driver_ = Driver::sqlite;
  std::string path_;
  bool in_memory_ = false;
  std::string shared_name_;
  std::string user_;
  std::optional<std::string> password_;
  std::string host_;
  std::string port_;
  std::string database_;
  std::vector<std::pair<std::string, std::string>> parameters_;
  std::vector<std::pair<std::string, std::string>> store_parameters_;

  friend class DatabaseUrlParser;
};

}  // namespace gamebot::repo
