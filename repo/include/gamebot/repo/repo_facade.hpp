#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/transaction.hpp"

namespace gamebot::repo {

namespace internal {
struct RepoState;
struct SandboxState;
}  // namespace internal

// "The connection the current context dictates", held for a scope. Obtained from
// Repo::acquire(). Move-only; release it on the thread that acquired it. Once
// Repo::reclaim_held_by() took it back it is inert: release() and the destructor only drop it,
// and its connection must not be used any more.
class ConnectionLease {
 public:
  ConnectionLease() noexcept;
  ConnectionLease(ConnectionLease&& other) noexcept;
  ConnectionLease& operator=(ConnectionLease&& other) noexcept;
  ConnectionLease(const ConnectionLease&) = delete;
  ConnectionLease& operator=(const ConnectionLease&) = delete;
  ~ConnectionLease();

  Connection& connection() const noexcept { return *connection_; }
  Connection& operator*() const noexcept { return *connection_; }
  Connection* operator->() const noexcept { return connection_; }
  explicit operator bool() const noexcept { return connection_ != nullptr; }
  // The connection is a test sandbox's pinned connection.
  bool sandboxed() const noexcept;
  // The lease reuses a connection this thread already holds from the same Repo.
  bool nested() const noexcept { return nested_; }
  // Gives the connection back now (no-op when empty). Never throws.
  void release() noexcept;
  // Repo::reclaim_held_by() took the lease back (it is inert).
  bool reclaimed() const noexcept;

 private:
  friend class Repo;
  std::shared_ptr<internal::RepoState> repo_;
  Connection* connection_ = nullptr;
  PooledConnection pooled_;
  std::shared_ptr<internal::SandboxState> sandbox_;
  std::thread::id thread_;
  bool nested_ = false;
  // Shared by the leases of one binding; set by Repo::reclaim_held_by().
  std::shared_ptr<std::atomic<bool>> reclaimed_;
};

// What Repo::reclaim_held_by() took back from a thread that never released its lease.
struct ReclaimedLease {
  std::uint64_t connection_id = 0;   // Connection::id() of the leased connection
  bool sandboxed = false;            // it was a sandbox's pinned connection
  int leases = 0;                    // leases still held on it (nested acquire()s count each)
  bool open_transaction = false;     // a Transaction begun on it was never committed/rolled back
  std::string transaction_begun_at;  // ... begun at this "file:line" (empty: not known)
};

// Repo settings.
struct RepoOptions {
  PoolOptions pool{};                                    // the pool behind the repo
  std::chrono::milliseconds sandbox_wait_timeout{5000};  // wait while another thread uses a sandbox
};

// The data-access entry point: a pool plus the routing rules that decide which connection a
// call uses. Copies share one state (cheap handle). Thread-safe.
//
// acquire() — "run this on the connection the current context dictates":
//   1. the calling thread already holds a lease from this repo (an enclosing acquire() or
//      transaction()): the same connection again, so nested work joins the caller's transaction;
//   2. else the thread owns a Sandbox of this repo, is allowed into one, or a shared sandbox
//      exists: that sandbox's pinned connection (other users wait for it, up to
//      sandbox_wait_timeout, then gamebot::Error timeout naming the current user);
//   3. else, while any sandbox is active: OwnershipError naming the owners (never a silent second
//      connection that sees different data);
//   4. else a pool checkout (PoolExhaustedError / DatabaseError as Pool::checkout).
// Event-store backends and application code call acquire()/transaction() for every operation,
// and so work inside a caller's transaction and inside test sandboxes unchanged.
class Repo {
 public:
  // A repo with its own pool for `url`.
  static Repo open(const DatabaseUrl& url, RepoOptions options = {});
  static Repo open(std::string_view url, RepoOptions options = {});
  // A repo on an existing pool.
  explicit Repo(std::shared_ptr<Pool> pool, RepoOptions options = {});

  Pool& pool() const noexcept;
  const std::shared_ptr<Pool>& shared_pool() const noexcept;
  const DatabaseUrl& url() const noexcept;
  Driver driver() const noexcept;

  // See the class comment. `label` tags a pool checkout (default: ScopedCheckoutLabel).
  ConnectionLease acquire(std::string_view label = {}) const;
  // A transaction on acquire()'s connection: BEGIN, or a SAVEPOINT when the thread is already
  // inside one (including a sandbox's).
  Transaction transaction(const TransactionOptions& options = {}, std::string_view label = {},
                          const char* file = __builtin_FILE(),
                          unsigned line = __builtin_LINE()) const;

  // fn(Connection&) on acquire()'s connection; returns what fn returns.
  template <typename F>
  decltype(auto) run(F&& fn, std::string_view label = {}) const {
    ConnectionLease lease = acquire(label);
    return std::forward<F>(fn)(*lease);
  }
  // fn(Connection&) inside transaction(); commits when fn returns, rolls back when it throws.
  template <typename F>
  decltype(auto) run_in_transaction(F&& fn, const TransactionOptions& options = {},
                                    const char* file = __builtin_FILE(),
                                    unsigned line = __builtin_LINE()) const {
    Transaction tx = transaction(options, {}, file, line);
    if constexpr (std::is_void_v<decltype(fn(tx.connection()))>) {
      std::forward<F>(fn)(tx.connection());
      tx.commit();
    } else {
      decltype(auto) value = std::forward<F>(fn)(tx.connection());
      tx.commit();
      return value;
    }
  }

  // For test-end leak checks: takes back the lease `thread` still holds from this repo (the
  // binding of routing rule 1), or nullopt when it holds none. The caller guarantees the thread's
  // work has ended (the test is over), so nothing uses the connection now. Rules:
  //   - every lease of that binding becomes inert: its later release()/destructor never touches
  //     the repo's bookkeeping, a sandbox's use, or the connection (which by then may be the next
  //     test's); a Transaction holding such a lease does nothing when destroyed, and its
  //     commit()/rollback() throw std::logic_error;
  //   - the thread routes afresh: it may open a new Sandbox, and a sandbox it was using is free
  //     again, so Sandbox::close() does not wait for the leaked lease;
  //   - a transaction or savepoint left open on a sandbox's connection is rolled back with the
  //     sandbox (Sandbox::close()); one on a pool checkout is the pool's to roll back
  //     (Pool::reclaim_held_by(), which the caller runs next).
  std::optional<ReclaimedLease> reclaim_held_by(std::thread::id thread);

  // True when some sandbox of this repo is active.
  bool sandbox_active() const;
  // True when the calling thread's acquire() would use a sandbox.
  bool current_thread_sandboxed() const;

  // Internal: the shared state (used by Sandbox).
  const std::shared_ptr<internal::RepoState>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<internal::RepoState> state_;
};

}  // namespace gamebot::repo
