#pragma once

// Notices commits made through other connections to an SQLite database (other
// processes, other pools, a caller's transaction that committed after the
// append) by checking PRAGMA data_version on a dedicated connection.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "gamebot/repo/sqlite_connection.hpp"

namespace gamebot::eventstore::sqlite_detail {

// A background thread that checks PRAGMA data_version of `connection` every
// `interval` and calls `on_change` when it moved. The check reads only the WAL
// index header (or, without WAL, the database header): no table is touched, so
// an idle store costs one cheap call per interval. A busy database (another
// connection holds a lock the check would wait for) skips that tick. The
// destructor stops and joins the thread. `on_change` must be noexcept-safe
// and cheap; it runs on the watcher thread.
class ChangeWatcher {
 public:
  ChangeWatcher(std::unique_ptr<repo::SqliteConnection> connection,
                std::chrono::milliseconds interval, std::function<void()> on_change);
  ~ChangeWatcher();
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

 private:
  // The current data_version; -1 when the database was busy.
  std::int64_t check() noexcept;
  void run() noexcept;

  std::unique_ptr<repo::SqliteConnection> connection_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> on_change_;
  std::int64_t seen_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace gamebot::eventstore::sqlite_detail
