#pragma once

// A cap on the PostgreSQL connections one holder (a test run's harness) has open at once, and
// the order they are taken in, so that processes sharing a full server (max_connections) make
// progress instead of deadlocking.
//
// Rules (enforced in PostgresConnection::open, the one place every PostgreSQL connection of the
// kit is opened; a connection whose PostgresOptions::budget names a budget counts against it
// until it is closed):
//
// * Never more than cap() open at once, placeholders included: an open at the cap waits (up to
//   PostgresOptions::connection_slot_wait) for another of the budget's connections to close.
// * No hold and wait on the server: a process that holds connections and waits for a slot held
//   by another process that does the same deadlocks once every slot is held by waiters. So a
//   full server (SQLSTATE 53300) is waited for only while the budget holds nothing, or by an
//   open that takes the place of a placeholder reserve() made (its slot was just given back;
//   only a process that is reserving, and so releases what it got unless it gets all, can
//   have taken it). Any other open that finds the server full fails at once: an extra the
//   caller can do without, or retry later.
// * reserve() takes the holder's minimum set of slots all or nothing while holding none: it
//   opens placeholders and, finding the server full, closes every one and waits, holding
//   nothing. The holder's phases then open their minimum set in place of the placeholders (an
//   open of a placeholder's own URL takes the placeholder itself: no second connection setup).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/options.hpp"

namespace gamebot::repo {

class PostgresConnection;

class ConnectionBudget {
 public:
  // One connection's place in the budget: given back when destroyed (after its connection
  // closed). Move-only.
  class Slot {
   public:
    Slot() noexcept = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();
    // Whether the connection may wait for a free server slot (see the rules above).
    bool may_wait_for_server() const noexcept { return may_wait_; }

   private:
    friend class ConnectionBudget;
    Slot(ConnectionBudget* budget, bool may_wait) noexcept : budget_(budget), may_wait_(may_wait) {}
    ConnectionBudget* budget_ = nullptr;
    bool may_wait_ = false;
  };

  // `cap`: most connections open at once (at least 1).
  explicit ConnectionBudget(std::size_t cap);
  ~ConnectionBudget();
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  // A place for one connection: the placeholder to take as the connection, if one was to `url`.
  struct Admission {
    Slot slot;
    std::unique_ptr<PostgresConnection> placeholder;
  };
  // Takes a place for one connection to `url` about to be opened: one of reserve()'s
  // placeholders (one to `url` itself is handed over, another is closed now), else a free place
  // under the cap, waiting up to `wait` for one. Throws gamebot::Error(pool_exhausted) naming
  // the cap when none frees in time. Thread-safe.
  Admission admit(const DatabaseUrl& url, std::chrono::milliseconds wait);

  // Holding nothing of this budget, opens `count` (at most cap()) placeholder connections to
  // `url` together (PostgresConnection::open_together) and all or nothing: on a full server it
  // closes those it got and retries with backoff and jitter, holding none, for up to
  // options.connection_slot_wait (a progress line at once, then every 5 s), then throws the
  // server's refusal. Thread-safe.
  void reserve(const DatabaseUrl& url, std::size_t count, const PostgresOptions& options);
  // The same, one placeholder to each of `urls` (at most cap(), the first ones first). A URL
  // naming another database than the first is the holder's guess at a connection it will open
  // (a later open of that URL takes the placeholder, as above): when its placeholder cannot be
  // opened for any reason but a full server (that database is gone), every placeholder is opened
  // to the first URL instead, at the cost of one more attempt.
  void reserve(std::span<const DatabaseUrl> urls, const PostgresOptions& options);

  // Closes the placeholders not taken yet (what the holder's minimum set did not use).
  void release_reserve() noexcept;

  std::size_t cap() const noexcept { return cap_; }
  std::size_t open() const;          // connections open now, placeholders included
  std::size_t peak() const;          // most open at once
  std::size_t opened() const;        // connections set up: placeholders and other admissions
  std::size_t placeholders() const;  // reserve()'s placeholders not taken yet

 private:
  void give_back() noexcept;

  const std::size_t cap_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::size_t open_ = 0;  // admitted slots not given back (placeholders are not among them)
  std::size_t peak_ = 0;
  std::size_t opened_ = 0;
  std::vector<std::unique_ptr<PostgresConnection>> placeholders_;
};

}  // namespace gamebot::repo
