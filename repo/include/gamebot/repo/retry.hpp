#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/transaction.hpp"

namespace gamebot::repo {

// How often and how patiently with_retry retries a transaction.
struct RetryBudget {
  int max_attempts = 5;                          // total attempts, including the first
  std::chrono::milliseconds initial_backoff{2};  // sleep before the 2nd attempt; doubles
  std::chrono::milliseconds max_backoff{100};    // cap of one sleep (jitter: 50-100%)
};

namespace internal {
// Sleeps the jittered backoff for `attempt` (1-based number of the failed attempt).
void retry_backoff(const RetryBudget& budget, int attempt);

template <typename Begin, typename F>
decltype(auto) retry_loop(const RetryBudget& budget, Begin&& begin, F&& fn) {
  for (int attempt = 1;; ++attempt) {
    {
      Transaction tx = begin();
      try {
        if constexpr (std::is_void_v<decltype(fn(tx))>) {
          fn(tx);
          if (tx.active()) tx.commit();
          return;
        } else {
          auto value = fn(tx);
          if (tx.active()) tx.commit();
          return value;
        }
      } catch (const DatabaseError& error) {
        // A savepoint cannot be retried on its own: the enclosing transaction is doomed.
        if (!error.transaction_retryable() || tx.is_savepoint() || attempt >= budget.max_attempts) {
          throw;
        }
      }
    }  // the failed attempt is rolled back here, before the backoff
    retry_backoff(budget, attempt);
  }
}
}  // namespace internal

// Runs fn(Transaction&) in a fresh transaction and commits it; when it fails with a
// transaction-retryable DatabaseError (serialization failure 40001, deadlock 40P01, SQLITE_BUSY,
// SQLITE_LOCKED) the transaction is rolled back and run again, up to budget.max_attempts, with
// jittered exponential backoff. Inside an enclosing transaction (a savepoint, e.g. in a sandbox)
// it runs once: retrying a savepoint cannot help. Other errors propagate at once.
template <typename F>
decltype(auto) with_retry(const Repo& repo, const RetryBudget& budget, F&& fn,
                          const TransactionOptions& options = {}) {
  return internal::retry_loop(
      budget, [&] { return repo.transaction(options); }, std::forward<F>(fn));
}
template <typename F>
decltype(auto) with_retry(Connection& connection, const RetryBudget& budget, F&& fn,
                          const TransactionOptions& options = {}) {
  return internal::retry_loop(
      budget, [&] { return Transaction(connection, options); }, std::forward<F>(fn));
}
template <typename F>
decltype(auto) with_retry(Pool& pool, const RetryBudget& budget, F&& fn,
                          const TransactionOptions& options = {}) {
  return internal::retry_loop(
      budget, [&] { return Transaction(Repo(pool.shared_from_this()).acquire(), options); },
      std::forward<F>(fn));
}

}  // namespace gamebot::repo
