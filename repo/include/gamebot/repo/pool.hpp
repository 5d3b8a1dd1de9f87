#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/options.hpp"

namespace gamebot::repo {

class Pool;

// Pool settings.
struct PoolOptions {
  std::size_t min_size = 0;                             // opened at creation/resize and kept open
  std::size_t max_size = 10;                            // hard upper bound of open connections
  std::chrono::milliseconds checkout_timeout{5000};     // wait this long for a free connection
  std::chrono::milliseconds validate_after_idle{5000};  // ping idle-longer connections at checkout
  // Trust a connection's last socket liveness check for this long (HikariCP's "alive bypass
  // window"; saves one poll(), ~0.3 us, per checkout). 0 = check at every checkout, so a
  // connection the server killed is never handed out.
  std::chrono::microseconds liveness_check_interval{0};
  std::chrono::milliseconds max_lifetime{std::chrono::minutes(30)};  // retire older; 0 = never
  ConnectOptions connect{};  // driver settings for new connections
};

// Who holds a checked-out connection.
struct CheckoutInfo {
  std::string label;                            // caller label, or the thread's ScopedCheckoutLabel
  std::thread::id thread;                       // thread that checked it out
  std::chrono::system_clock::time_point since;  // wall-clock checkout time
  std::chrono::steady_clock::time_point since_steady;  // for durations
  std::uint64_t connection_id = 0;                     // Connection::id()
  // "'label' on thread 1403 since 12:00:01.123 (0.350 s), connection #3"
  std::string to_string() const;
};

// Counters of a pool's life.
struct PoolStats {
  std::size_t size = 0;         // open connections (idle + in use + being opened)
  std::size_t idle = 0;         // open and free
  std::size_t in_use = 0;       // checked out now
  std::size_t peak_in_use = 0;  // highest in_use seen
  std::size_t min_size = 0;     // current bounds
  std::size_t max_size = 0;
  std::uint64_t checkouts = 0;            // successful checkouts
  std::uint64_t waits = 0;                // checkouts that had to wait for a connection
  std::chrono::nanoseconds wait_time{0};  // total time spent waiting
  std::uint64_t timeouts = 0;             // checkouts that failed with pool_exhausted
  std::uint64_t opened = 0;               // connections opened
  std::uint64_t open_failures = 0;        // failed connection attempts
  std::uint64_t replaced = 0;       // broken connections discarded (killed by the server, lost)
  std::uint64_t expired = 0;        // connections retired at max_lifetime
  std::uint64_t dirty_returns = 0;  // returned inside a transaction (rolled back on return)
};

// A connection Pool::reclaim_held_by() took back from a holder that never returned it.
struct ReclaimedConnection {
  CheckoutInfo holder;               // who held it
  bool open_transaction = false;     // it was inside a transaction nobody committed or rolled back
  std::string transaction_begun_at;  // "file:line" of that Transaction (empty: not known)
  bool rolled_back = false;          // ... which the pool rolled back (false: the rollback failed)
};

// No connection became free within the checkout timeout (fault class pool_exhausted). The
// message names every holder and since when.
class PoolExhaustedError : public gamebot::Error {
 public:
  PoolExhaustedError(std::string message, std::vector<CheckoutInfo> holders);
  const std::vector<CheckoutInfo>& holders() const noexcept { return holders_; }

 private:
  std::vector<CheckoutInfo> holders_;
};

// Sets the calling thread's default checkout label for its lifetime (the harness puts the test
// name here), so every checkout without an explicit label is attributed. Nests.
class ScopedCheckoutLabel {
 public:
  explicit ScopedCheckoutLabel(std::string label);
  ~ScopedCheckoutLabel();
  ScopedCheckoutLabel(const ScopedCheckoutLabel&) = delete;
  ScopedCheckoutLabel& operator=(const ScopedCheckoutLabel&) = delete;
  // The calling thread's current default label (empty when none).
  static const std::string& current() noexcept;

 private:
  std::string previous_;
};

// One pooled connection and its bookkeeping (internal to Pool).
struct PoolSlot {
  std::unique_ptr<Connection> connection;
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point last_used;
  std::chrono::steady_clock::time_point last_liveness_check;
  CheckoutInfo owner;
  bool reclaimed = false;  // taken back by reclaim_held_by(): closed, not kept, when returned
};

// A checked-out connection, returned to its pool when destroyed (also during unwinding). If the
// pool is gone by then, the connection is closed instead (the handle holds a weak_ptr to it).
// Move-only. Use and destroy it on one thread at a time.
class PooledConnection {
 public:
  PooledConnection() noexcept = default;
  PooledConnection(PooledConnection&& other) noexcept = default;
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  ~PooledConnection() { release(); }

  Connection& operator*() const noexcept { return *slot_->connection; }
  Connection* operator->() const noexcept { return slot_->connection.get(); }
  Connection* get() const noexcept { return slot_ ? slot_->connection.get() : nullptr; }
  explicit operator bool() const noexcept { return slot_ != nullptr; }
  // Returns the connection now (no-op when empty).
  void release() noexcept;

  using Slot = PoolSlot;

 private:
  friend class Pool;
  PooledConnection(std::unique_ptr<Slot> slot, std::weak_ptr<Pool> pool) noexcept
      : slot_(std::move(slot)), pool_(std::move(pool)) {}
  std::unique_ptr<Slot> slot_;
  std::weak_ptr<Pool> pool_;
};

// A bounded pool of connections to one database. Thread-safe. Create with Pool::create (it is
// always owned by a shared_ptr so that handles can outlive it safely).
//
// Checkout hands out an idle connection after cheap checks (max lifetime; driver liveness, e.g.
// a socket the server closed after pg_terminate_backend, unless checked within
// liveness_check_interval; a ping if idle longer than validate_after_idle); dead ones are
// discarded and replaced, never handed out. A connection killed within liveness_check_interval
// of its last check is caught by its first statement instead (connectivity error, discarded at
// return). When none is idle and the pool is below max_size a new one is opened; otherwise the
// caller waits up to the checkout timeout and then gets PoolExhaustedError naming every holder.
class Pool : public std::enable_shared_from_this<Pool> {
 public:
  // Opens min_size connections now (throws DatabaseError if that fails) and validates the
  // options (gamebot::Error configuration: max_size 0 or min_size > max_size). An sqlite::memory:
  // URL becomes a shared in-memory database private to this pool, kept alive by the pool.
  static std::shared_ptr<Pool> create(DatabaseUrl url, PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Checks out a connection for `label` (empty: the thread's ScopedCheckoutLabel). Throws
  // PoolExhaustedError after the timeout, DatabaseError when opening a connection fails.
  PooledConnection checkout(std::string_view label = {});
  PooledConnection checkout(std::string_view label, std::chrono::milliseconds timeout);

  // Changes the bounds at run time. Growing min_size opens connections now; shrinking
  // max_size closes idle connections now and busy ones when they come back. Throws
  // gamebot::Error(configuration) for invalid bounds, DatabaseError if opening fails.
  void resize(std::size_t min_size, std::size_t max_size);

  PoolStats stats() const;
  // Everyone holding a connection now, oldest first.
  std::vector<CheckoutInfo> checked_out() const;
  // Takes back every connection `thread` checked out and still holds, for a harness whose test
  // has ended on that thread (the caller: so none of them is in use). An open transaction on one
  // is rolled back; the connection leaves the pool (its place is free for others) and is closed
  // when its forgotten handle is finally destroyed. Oldest first.
  std::vector<ReclaimedConnection> reclaim_held_by(std::thread::id thread);

  // A report of the connections still checked out (one line per holder); empty when none.
  // For test-end leak checks.
  std::string leak_report() const;

  // The URL connections are opened with (for sqlite::memory: the pool's shared name).
  const DatabaseUrl& url() const noexcept { return url_; }
  Driver driver() const noexcept { return url_.driver(); }
  const PoolOptions& options() const noexcept { return options_; }

 private:
  struct PrivateTag {};

 public:
  Pool(PrivateTag, DatabaseUrl url, PoolOptions options);

 private:
  friend class PooledConnection;
  using Slot = PooledConnection::Slot;
  std::unique_ptr<Slot> open_slot();
  void give_back(std::unique_ptr<Slot> slot) noexcept;
  bool usable(Slot& slot, std::chrono::steady_clock::time_point now, bool& expired) noexcept;
  void fill_to_min();

  struct State;
  DatabaseUrl url_;
  PoolOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace gamebot::repo
