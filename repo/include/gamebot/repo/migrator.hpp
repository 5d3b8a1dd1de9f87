#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gamebot/repo/connection.hpp"

namespace gamebot::repo {

// One schema change. Versions order the set; the checksum (SHA-256 of `sql`) detects edits.
// A released migration is frozen. Where one was edited after stores applied it anyway, those
// stores recorded an earlier checksum: list it in `earlier_checksums` (and bring such stores to
// today's schema with a later migration), so they open instead of failing as edited.
struct Migration {
  std::int64_t version = 0;                      // > 0, strictly increasing within a set
  std::string name;                              // unique, human-readable ("create_events")
  std::string sql;                               // one or more ';'-separated statements
  std::vector<std::string> earlier_checksums{};  // hex SHA-256 of each earlier released text
};

// Migrator settings.
struct MigratorOptions {
  std::string table = "gamebot_schema_migrations";  // where applied migrations are recorded
  std::string schema{};  // PostgreSQL: schema of the table, created if missing and used as
                         // search_path while migrating; empty = the current search_path
};

// One applied migration as recorded in the database.
struct AppliedMigration {
  std::int64_t version = 0;
  std::string name;
  std::string checksum;  // hex SHA-256
};

// What migrate() did.
struct MigrationReport {
  std::vector<AppliedMigration> applied;  // applied by this call, in order
  std::size_t already_applied = 0;        // found applied before the call
};

// The database compared with the expected set, without changes.
struct VerifyReport {
  std::vector<std::string> pending;   // "3 'add_index'" in code, not in the database
  std::vector<std::string> problems;  // edited, unknown or out-of-order migrations
  bool current() const noexcept { return pending.empty() && problems.empty(); }
  // One line per finding; empty when current().
  std::string describe() const;
};

// Applies an ordered, named, checksummed set of migrations recorded in one table.
// Thread-safe (const after construction); each call uses the connection it is given.
class Migrator {
 public:
  // Throws gamebot::Error(configuration) for an empty set entry name, non-positive or
  // non-increasing versions, or duplicate names.
  explicit Migrator(std::vector<Migration> migrations, MigratorOptions options = {});

  // Applies the pending migrations in one transaction (a savepoint when the connection is already
  // in one). Concurrent migrators serialize: PostgreSQL pg_advisory_xact_lock, SQLite BEGIN
  // IMMEDIATE. Applying twice is a no-op. Throws DatabaseError(schema) naming the migration when
  // an applied one was edited, the database has one this code does not know, or one is missing
  // before an applied later one; a failing migration's DatabaseError names it too (nothing of
  // the call is kept).
  MigrationReport migrate(Connection& connection) const;
  // Compares without changing anything (no table is created).
  VerifyReport verify(Connection& connection) const;
  // verify(), throwing DatabaseError(schema) with the report unless current().
  void require_current(Connection& connection) const;
  // The migrations recorded in the database, by version (empty when the table is missing).
  std::vector<AppliedMigration> applied(Connection& connection) const;

  // Hex SHA-256 over every (version, name, checksum): the identity of the expected schema (the
  // harness keys template databases on it).
  const std::string& set_hash() const noexcept { return set_hash_; }
  const std::vector<Migration>& migrations() const noexcept { return migrations_; }
  const MigratorOptions& options() const noexcept { return options_; }
  // Hex SHA-256 of one migration's SQL.
  static std::string checksum(const std::string& sql);

 private:
  std::string qualified_table() const;
  std::vector<Migration> migrations_;
  std::vector<std::string> checksums_;
  MigratorOptions options_;
  std::string set_hash_;
};

}  // namespace gamebot::repo
