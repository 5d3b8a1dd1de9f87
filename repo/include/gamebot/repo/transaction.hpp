#pragma once

#include <memory>
#include <optional>

#include "gamebot/repo/connection.hpp"

namespace gamebot::repo {

class ConnectionLease;

// PostgreSQL isolation levels (SQLite transactions are always serializable).
enum class IsolationLevel { server_default, read_committed, repeatable_read, serializable };

// How SQLite takes its lock at BEGIN.
enum class SqliteLocking {
  deferred,   // BEGIN DEFERRED: lock on first read/write
  immediate,  // BEGIN IMMEDIATE: write lock now (writers serialize, busy_timeout applies)
  exclusive,  // BEGIN EXCLUSIVE
};

// Options of an outermost transaction; a nested transaction (savepoint) ignores them.
struct TransactionOptions {
  IsolationLevel isolation = IsolationLevel::server_default;  // PostgreSQL only
  bool read_only = false;                                     // PostgreSQL READ ONLY
  SqliteLocking sqlite_locking = SqliteLocking::deferred;     // SQLite BEGIN mode
};

// RAII transaction. The first one on a connection issues BEGIN; one opened while another is
// active on the same connection is a SAVEPOINT (so code that opens its own transactions works
// inside a caller's transaction or a test sandbox). The destructor rolls back unless commit()
// ran, and never throws (a failed rollback marks the connection broken).
//
// Misuse throws std::logic_error: commit/rollback after the transaction ended, while a nested
// transaction on the same connection is still open, or after Repo::reclaim_held_by() took back
// its lease (then the destructor does nothing: the connection was rolled back elsewhere). Errors
// from the database are DatabaseError. Not thread-safe; the connection must outlive the Transaction
// (or be owned by it via a lease).
//
// `where` (the caller's line, by default) is kept on the connection while the transaction is
// open, so a leak report can say which Transaction was never committed or rolled back.
class Transaction {
 public:
  explicit Transaction(Connection& connection, const TransactionOptions& options = {},
                       const char* file = __builtin_FILE(), unsigned line = __builtin_LINE());
  // Takes the lease along, so the connection is released after the transaction ends.
  explicit Transaction(ConnectionLease&& lease, const TransactionOptions& options = {},
                       const char* file = __builtin_FILE(), unsigned line = __builtin_LINE());
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  void commit();
  void rollback();

  Connection& connection() const noexcept { return *connection_; }
  Connection* operator->() const noexcept { return connection_; }
  bool active() const noexcept;
  // True when this is a savepoint inside an enclosing transaction.
  bool is_savepoint() const noexcept { return level_ > 1; }
  // 1 for the outermost transaction, 2 for its first savepoint, ...
  int level() const noexcept { return level_; }

 private:
  void begin(const TransactionOptions& options, SourcePlace where);
  void finish(bool commit);

  std::unique_ptr<ConnectionLease> lease_;
  Connection* connection_;
  int level_ = 0;
  bool done_ = false;
};

}  // namespace gamebot::repo
