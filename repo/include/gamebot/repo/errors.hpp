#pragma once

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/database_url.hpp"

namespace gamebot::repo {

// What the driver reported with an error, beyond the message.
struct DatabaseErrorDetails {
  Driver driver = Driver::sqlite;      // which driver raised it
  std::string sqlstate;                // PostgreSQL SQLSTATE ("23505"); empty for SQLite
  int sqlite_code = 0;                 // SQLite extended result code; 0 for PostgreSQL
  std::string constraint;              // violated constraint (PostgreSQL name; SQLite column list)
  bool transaction_retryable = false;  // serialization failure, deadlock, SQLITE_BUSY/LOCKED
  bool connection_lost = false;        // the connection is unusable afterwards
};

// An error reported by a database driver, classified into a FaultClass. code() is the SQLSTATE
// (PostgreSQL) or the SQLite extended code name ("SQLITE_CONSTRAINT_UNIQUE").
class DatabaseError : public gamebot::Error {
 public:
  DatabaseError(FaultClass fault, std::string message, DatabaseErrorDetails details);

  Driver driver() const noexcept { return details_.driver; }
  const std::string& sqlstate() const noexcept { return details_.sqlstate; }
  int sqlite_code() const noexcept { return details_.sqlite_code; }
  const std::string& constraint() const noexcept { return details_.constraint; }
  // A unique or primary-key violation; constraint() names it.
  bool unique_violation() const noexcept;
  bool foreign_key_violation() const noexcept;
  // Retrying the whole transaction may succeed (40001, 40P01, SQLITE_BUSY, SQLITE_LOCKED).
  // Independent of retryable(), which is the fault-class rule of DESIGN.md.
  bool transaction_retryable() const noexcept { return details_.transaction_retryable; }
  bool connection_lost() const noexcept { return details_.connection_lost; }
  const DatabaseErrorDetails& details() const noexcept { return details_; }

 private:
  DatabaseErrorDetails details_;
};

// A column value could not be read as the requested C++ type (type mismatch or NULL into a
// non-optional: schema; value out of range or unparsable: integrity).
class ConversionError : public gamebot::Error {
 public:
  ConversionError(FaultClass fault, std::string message, std::string column);
  const std::string& column() const noexcept { return column_; }

 private:
  std::string column_;
};

// A thread used a repo while sandboxes are active without owning one, being allowed into one,
// or a shared sandbox being present (fault class configuration: the test must allow the thread).
class OwnershipError : public gamebot::Error {
 public:
  explicit OwnershipError(std::string message);
};

// Classification in one place. SQLSTATE classes: 08 connectivity, 28 authentication,
// 40001/40P01 concurrency (transaction-retryable), 23 integrity, 42/3F schema (but 42601
// syntax error internal), 57014/55P03
// timeout, 57P0x connectivity, 53300 connectivity, 3D000 configuration, others internal.
FaultClass classify_sqlstate(std::string_view sqlstate) noexcept;
bool sqlstate_transaction_retryable(std::string_view sqlstate) noexcept;
// SQLite extended result codes: BUSY/LOCKED concurrency (transaction-retryable), CONSTRAINT
// integrity, CORRUPT/NOTADB (and "unsupported file format", a damaged header) integrity,
// CANTOPEN/READONLY configuration, AUTH/PERM
// authentication, INTERRUPT timeout, FULL provisioning, SCHEMA and "no such table/column"
// schema, others internal.
FaultClass classify_sqlite(int extended_code, std::string_view message) noexcept;
bool sqlite_transaction_retryable(int extended_code) noexcept;
// "SQLITE_CONSTRAINT_UNIQUE" for 2067; "SQLITE_<n>" for codes without a known name.
std::string sqlite_code_name(int extended_code);

}  // namespace gamebot::repo
