#include "gamebot/repo/errors.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <string>

namespace gamebot::repo {
namespace {

std::string details_code(const DatabaseErrorDetails& details) {
  if (details.driver == Driver::postgres) return details.sqlstate;
  return details.sqlite_code == 0 ? std::string() : sqlite_code_name(details.sqlite_code);
}

}  // namespace

DatabaseError::DatabaseError(FaultClass fault, std::string message, DatabaseErrorDetails details)
    : gamebot::Error(fault, std::move(message), details_code(details)),
      details_(std::move(details)) {}

bool DatabaseError::unique_violation() const noexcept {
  if (details_.driver == Driver::postgres) return details_.sqlstate == "23505";
  return details_.sqlite_code == SQLITE_CONSTRAINT_UNIQUE ||
         details_.sqlite_code == SQLITE_CONSTRAINT_PRIMARYKEY;
}

bool DatabaseError::foreign_key_violation() const noexcept {
  if (details_.driver == Driver::postgres) return details_.sqlstate == "23503";
  return details_.sqlite_code == SQLITE_CONSTRAINT_FOREIGNKEY;
}

ConversionError::ConversionError(FaultClass fault, std::string message, std::string column)
    : gamebot::Error(fault, std::move(message)), column_(std::move(column)) {}

OwnershipError::OwnershipError(std::string message)
    : gamebot::Error(FaultClass::configuration, std::move(message)) {}

FaultClass classify_sqlstate(std::string_view state) noexcept {
  if (state.size() != 5) return FaultClass::internal;
  std::string_view cls = state.substr(0, 2);
  if (state == "40001" || state == "40P01") return FaultClass::concurrency;
  if (state == "40002") return FaultClass::integrity;
  if (state == "40003") return FaultClass::connectivity;
  if (state == "57014" || state == "55P03" || state == "25P03") return FaultClass::timeout;
  if (state == "57P01" || state == "57P02" || state == "57P03" || state == "57P05") {
    return FaultClass::connectivity;
  }
  if (state == "53300") return FaultClass::connectivity;   // too many connections: try later
  if (state == "3D000") return FaultClass::configuration;  // no such database
  if (state == "42501") return FaultClass::configuration;  // insufficient privilege
  if (state == "42601") return FaultClass::internal;       // syntax error: a bug in our SQL
  if (cls == "08") return FaultClass::connectivity;
  if (cls == "28") return FaultClass::authentication;
  if (cls == "23" || cls == "22") return FaultClass::integrity;
  if (cls == "42" || cls == "3F") return FaultClass::schema;
  if (cls == "53") return FaultClass::provisioning;  // disk full, out of memory
  return FaultClass::internal;
}

bool sqlstate_transaction_retryable(std::string_view state) noexcept {
  return state == "40001" || state == "40P01";
}

FaultClass classify_sqlite(int code, std::string_view message) noexcept {
  switch (code & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return FaultClass::concurrency;
    case SQLITE_CONSTRAINT:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
      return FaultClass::integrity;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return FaultClass::configuration;
    case SQLITE_AUTH:
    case SQLITE_PERM:
      return FaultClass::authentication;
    case SQLITE_INTERRUPT:
      return FaultClass::timeout;
    case SQLITE_FULL:
      return FaultClass::provisioning;
    case SQLITE_IOERR:
      return FaultClass::integrity;
    case SQLITE_SCHEMA:
      return FaultClass::schema;
    case SQLITE_ERROR:
      // A damaged file header (schema format number) reads as plain SQLITE_ERROR.
      if (message.starts_with("unsupported file format")) return FaultClass::integrity;
      if (message.starts_with("no such table") || message.starts_with("no such column") ||
          message.starts_with("no such index") || message.starts_with("no such function") ||
          message.find("already exists") != std::string_view::npos ||
          message.find("has no column named") != std::string_view::npos) {
        return FaultClass::schema;
      }
      return FaultClass::internal;
    default:
      return FaultClass::internal;
  }
}

bool sqlite_transaction_retryable(int code) noexcept {
  int primary = code & 0xFF;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

std::string sqlite_code_name(int code) {
  switch (code) {
#define GAMEBOT_SQLITE_CODE(name) \
  case name:                      \
    return #name;
    GAMEBOT_SQLITE_CODE(SQLITE_ERROR)
    GAMEBOT_SQLITE_CODE(SQLITE_INTERNAL)
    GAMEBOT_SQLITE_CODE(SQLITE_PERM)
    GAMEBOT_SQLITE_CODE(SQLITE_ABORT)
    GAMEBOT_SQLITE_CODE(SQLITE_BUSY)
    GAMEBOT_SQLITE_CODE(SQLITE_LOCKED)
    GAMEBOT_SQLITE_CODE(SQLITE_NOMEM)
    GAMEBOT_SQLITE_CODE(SQLITE_READONLY)
    GAMEBOT_SQLITE_CODE(SQLITE_INTERRUPT)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR)
    GAMEBOT_SQLITE_CODE(SQLITE_CORRUPT)
    GAMEBOT_SQLITE_CODE(SQLITE_NOTFOUND)
    GAMEBOT_SQLITE_CODE(SQLITE_FULL)
    GAMEBOT_SQLITE_CODE(SQLITE_CANTOPEN)
    GAMEBOT_SQLITE_CODE(SQLITE_PROTOCOL)
    GAMEBOT_SQLITE_CODE(SQLITE_SCHEMA)
    GAMEBOT_SQLITE_CODE(SQLITE_TOOBIG)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT)
    GAMEBOT_SQLITE_CODE(SQLITE_MISMATCH)
    GAMEBOT_SQLITE_CODE(SQLITE_MISUSE)
    GAMEBOT_SQLITE_CODE(SQLITE_AUTH)
    GAMEBOT_SQLITE_CODE(SQLITE_RANGE)
    GAMEBOT_SQLITE_CODE(SQLITE_NOTADB)
    GAMEBOT_SQLITE_CODE(SQLITE_ERROR_MISSING_COLLSEQ)
    GAMEBOT_SQLITE_CODE(SQLITE_ERROR_RETRY)
    GAMEBOT_SQLITE_CODE(SQLITE_ERROR_SNAPSHOT)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_READ)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_SHORT_READ)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_WRITE)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_FSYNC)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_TRUNCATE)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_LOCK)
    GAMEBOT_SQLITE_CODE(SQLITE_IOERR_NOMEM)
    GAMEBOT_SQLITE_CODE(SQLITE_LOCKED_SHAREDCACHE)
    GAMEBOT_SQLITE_CODE(SQLITE_BUSY_RECOVERY)
    GAMEBOT_SQLITE_CODE(SQLITE_BUSY_SNAPSHOT)
    GAMEBOT_SQLITE_CODE(SQLITE_BUSY_TIMEOUT)
    GAMEBOT_SQLITE_CODE(SQLITE_CANTOPEN_NOTEMPDIR)
    GAMEBOT_SQLITE_CODE(SQLITE_CANTOPEN_ISDIR)
    GAMEBOT_SQLITE_CODE(SQLITE_CANTOPEN_FULLPATH)
    GAMEBOT_SQLITE_CODE(SQLITE_CORRUPT_VTAB)
    GAMEBOT_SQLITE_CODE(SQLITE_READONLY_RECOVERY)
    GAMEBOT_SQLITE_CODE(SQLITE_READONLY_CANTLOCK)
    GAMEBOT_SQLITE_CODE(SQLITE_READONLY_ROLLBACK)
    GAMEBOT_SQLITE_CODE(SQLITE_READONLY_DBMOVED)
    GAMEBOT_SQLITE_CODE(SQLITE_ABORT_ROLLBACK)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_CHECK)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_COMMITHOOK)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_FOREIGNKEY)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_FUNCTION)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_NOTNULL)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_PRIMARYKEY)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_TRIGGER)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_UNIQUE)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_VTAB)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_ROWID)
    GAMEBOT_SQLITE_CODE(SQLITE_CONSTRAINT_DATATYPE)
    GAMEBOT_SQLITE_CODE(SQLITE_AUTH_USER)
#undef GAMEBOT_SQLITE_CODE
    default:
      return fmt::format("SQLITE_{}", code);
  }
}

}  // namespace gamebot::repo
