#pragma once

// The PostgreSQL backend's background thread and its dedicated connection:
// * listen mode: LISTEN on the store's channel; every notification from
//   another connection calls `changed`. When the connection drops (a server
//   restart, pg_terminate_backend, a network fault) it reconnects with
//   exponential backoff, LISTENs again and calls `changed`, so subscribers
//   re-read from their cursors (nothing lost, nothing repeated).
// * poll mode: no LISTEN; every interval it calls `poll` (which probes the
//   watermark and wakes subscribers when it moved).
// * both: `record` right after connecting and then every record_interval.
// * both: request_notify() makes it send one NOTIFY for all requests made
//   since the last one (coalesced), telling other processes about this
//   backend's commits.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/options.hpp"

namespace gamebot::eventstore::postgres_detail {

class Background {
 public:
  struct Settings {
    repo::DatabaseUrl url;                            // where to connect
    repo::PostgresOptions connect{};                  // driver settings of the dedicated connection
    std::string channel;                              // LISTEN/NOTIFY channel
    bool listen = true;                               // listen mode (else poll mode)
    std::chrono::milliseconds interval{100};          // poll period / longest reconnect backoff
    std::chrono::milliseconds record_interval{1000};  // period of the `record` hook
    // Shortest time between two NOTIFYs: under a stream of appends, one NOTIFY
    // covers all of them (the first after a quiet spell goes out at once).
    std::chrono::microseconds notify_interval{1000};
  };
  struct Hooks {
    std::function<void()> changed;                  // wake subscribers (noexcept in practice)
    std::function<void(repo::Connection&)> poll;    // poll mode: check for commits
    std::function<void(repo::Connection&)> record;  // log a watermark bound (see watermark.hpp)
  };

  // Starts the thread; the first connection is made on it (a failure there is
  // retried, never thrown here). Throws std::system_error if the thread or its
  // wake-up descriptor cannot be created.
  Background(Settings settings, Hooks hooks);
  // Stops and joins the thread, closing its connection. noexcept.
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  // Asks for a NOTIFY (coalesced). Thread-safe, noexcept, cheap when a request
  // is already pending.
  void request_notify() noexcept;

  // Waits until the first connection attempt is over (and, if it succeeded,
  // the first `record` ran), at most `timeout`. True if connected by then.
  bool wait_started(std::chrono::milliseconds timeout);

  // pg_backend_pid() of the listening connection, 0 while disconnected.
  int backend_pid() const noexcept { return backend_pid_.load(); }
  // Connections established so far.
  std::uint64_t connections() const noexcept { return connections_.load(); }

 private:
  void run() noexcept;
  bool connect() noexcept;
  bool drain_notifications() noexcept;
  bool send_notify() noexcept;
  void wake() noexcept;
  void drop_connection() noexcept;

  Settings settings_;
  Hooks hooks_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> notify_requested_{false};
  std::atomic<bool> lingering_{false};  // within notify_interval after a NOTIFY
  std::atomic<int> backend_pid_{0};
  std::atomic<std::uint64_t> connections_{0};
  std::unique_ptr<repo::Connection> connection_;  // used by the thread only
  std::mutex started_mutex_;
  std::condition_variable started_changed_;
  bool started_ = false;  // the first connection attempt is over
  std::thread thread_;
};

}  // namespace gamebot::eventstore::postgres_detail
