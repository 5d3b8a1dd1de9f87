#include "gamebot/repo/transaction.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <string>

#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::repo {
namespace {

std::string begin_sql(Driver driver, const TransactionOptions& options) {
  if (driver == Driver::sqlite) {
    switch (options.sqlite_locking) {
      case SqliteLocking::deferred:
        return "BEGIN DEFERRED";
      case SqliteLocking::immediate:
        return "BEGIN IMMEDIATE";
      case SqliteLocking::exclusive:
        return "BEGIN EXCLUSIVE";
    }
  }
  std::string sql = "BEGIN";
  switch (options.isolation) {
    case IsolationLevel::server_default:
      break;
    case IsolationLevel::read_committed:
      sql += " ISOLATION LEVEL READ COMMITTED";
      break;
    case IsolationLevel::repeatable_read:
      sql += " ISOLATION LEVEL REPEATABLE READ";
      break;
    case IsolationLevel::serializable:
      sql += " ISOLATION LEVEL SERIALIZABLE";
      break;
  }
  if (options.read_only) sql += " READ ONLY";
  return sql;
}

}  // namespace

Transaction::Transaction(Connection& connection, const TransactionOptions& options,
                         const char* file, unsigned line)
    : connection_(&connection) {
  begin(options, SourcePlace{file, line});
}

Transaction::Transaction(ConnectionLease&& lease, const TransactionOptions& options,
                         const char* file, unsigned line)
    : lease_(std::make_unique<ConnectionLease>(std::move(lease))), connection_(&**lease_) {
  begin(options, SourcePlace{file, line});
}

Transaction::Transaction(Transaction&& other) noexcept
    : lease_(std::move(other.lease_)),
      connection_(other.connection_),
      level_(other.level_),
      done_(other.done_) {
  other.done_ = true;
}

void Transaction::begin(const TransactionOptions& options, SourcePlace where) {
  Connection& c = *connection_;
  // A depth the driver contradicts (a transaction ended behind our back, e.g. SQLite rolled
  // back on an I/O error) is reset so the next BEGIN is honest.
  if (c.depth_ > 0 && !c.in_transaction()) c.depth_ = 0;
  int level = c.depth_ + 1;
  if (level == 1) {
    c.run_control(begin_sql(c.driver(), options));
  } else {
    c.run_control(fmt::format("SAVEPOINT gb_sp_{}", level));
  }
  c.depth_ = level;
  level_ = level;
  if (c.begun_at_.size() < static_cast<std::size_t>(level)) c.begun_at_.resize(level);
  c.begun_at_[static_cast<std::size_t>(level) - 1] = where;
}

bool Transaction::active() const noexcept {
  if (lease_ && lease_->reclaimed()) return false;
  return !done_ && connection_ != nullptr && connection_->depth_ >= level_;
}

void Transaction::commit() {
  finish(true);
}

void Transaction::rollback() {
  finish(false);
}

void Transaction::finish(bool commit) {
  if (lease_ && lease_->reclaimed()) {
    throw std::logic_error(fmt::format(
        "{} of a transaction whose lease Repo::reclaim_held_by() took back (its test had ended)",
        commit ? "commit" : "rollback"));
  }
  Connection& c = *connection_;
  if (done_ || c.depth_ < level_) {
    throw std::logic_error(fmt::format("{} of a transaction that already ended (connection #{})",
                                       commit ? "commit" : "rollback", c.id()));
  }
  if (c.depth_ > level_) {
    throw std::logic_error(fmt::format(
        "{} of transaction level {} while nested level {} is still open (connection #{})",
        commit ? "commit" : "rollback", level_, c.depth_, c.id()));
  }
  if (level_ == 1) {
    try {
      c.run_control(commit ? "COMMIT" : "ROLLBACK");
    } catch (...) {
      // A failed COMMIT usually ends the transaction (PostgreSQL rolls back); SQLite may keep it
      // open (SQLITE_BUSY), in which case the destructor rolls back.
      if (!c.in_transaction() || c.broken()) {
        done_ = true;
        c.depth_ = 0;
      }
      throw;
    }
    done_ = true;
    c.depth_ = 0;
    return;
  }
  std::string sql =
      commit ? fmt::format("RELEASE SAVEPOINT gb_sp_{}", level_)
             : fmt::format("ROLLBACK TO SAVEPOINT gb_sp_{0}; RELEASE SAVEPOINT gb_sp_{0}", level_);
  if (!commit && c.driver() == Driver::sqlite) {
    // One statement per call on the SQLite fast path.
    try {
      c.run_control(fmt::format("ROLLBACK TO SAVEPOINT gb_sp_{}", level_));
      c.run_control(fmt::format("RELEASE SAVEPOINT gb_sp_{}", level_));
    } catch (...) {
      done_ = true;
      c.depth_ = c.in_transaction() ? level_ - 1 : 0;
      throw;
    }
  } else {
    try {
      c.run_control(sql);
    } catch (...) {
      done_ = true;
      c.depth_ = c.in_transaction() ? level_ - 1 : 0;
      throw;
    }
  }
  done_ = true;
  c.depth_ = level_ - 1;
}

Transaction::~Transaction() {
  if (done_ || connection_ == nullptr) return;
  // Taken back at its test's end: the connection was rolled back with the sandbox or the pool
  // and may be another test's now.
  if (lease_ && lease_->reclaimed()) return;
  Connection& c = *connection_;
  if (c.depth_ < level_) return;  // an enclosing transaction already ended it
  try {
    if (c.depth_ > level_) {
      // Inner transactions left open (moved away): roll back down to this level.
      c.depth_ = level_;
    }
    if (c.broken()) {
      c.depth_ = 0;
    } else {
      finish(false);
    }
  } catch (const std::exception& e) {
    logger()->warn("connection #{}: rollback of transaction level {} failed: {}", c.id(), level_,
                   e.what());
    if (level_ == 1 || !c.in_transaction()) {
      c.depth_ = 0;
      if (c.in_transaction()) c.mark_broken();
    }
  }
  done_ = true;
}

}  // namespace gamebot::repo

#include <random>
#include <thread>

#include "gamebot/repo/retry.hpp"

namespace gamebot::repo::internal {

void retry_backoff(const RetryBudget& budget, int attempt) {
  thread_local std::mt19937 engine{std::random_device{}()};
  auto base = budget.initial_backoff * (1LL << std::min(attempt - 1, 20));
  auto capped = std::min<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(base), budget.max_backoff);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(
      static_cast<double>(capped.count()) * jitter(engine)));
}

}  // namespace gamebot::repo::internal
