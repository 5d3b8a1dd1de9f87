#include "change_watcher.hpp"

#include <sqlite3.h>

#include "statements.hpp"

namespace gamebot::eventstore::sqlite_detail {

ChangeWatcher::ChangeWatcher(std::unique_ptr<repo::SqliteConnection> connection,
                             std::chrono::milliseconds interval, std::function<void()> on_change)
    : connection_(std::move(connection)), interval_(interval), on_change_(std::move(on_change)) {
  seen_ = check();
  thread_ = std::thread([this] { run(); });
}

ChangeWatcher::~ChangeWatcher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::int64_t ChangeWatcher::check() noexcept {
  try {
    Statement version(connection_->native_handle(), Sql::data_version);
    if (version.step_code() != SQLITE_ROW) return -1;
    return version.integer(0);
  } catch (...) {
    return -1;  // e.g. out of memory while preparing: try again next tick
  }
}

void ChangeWatcher::run() noexcept {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, interval_, [this] { return stop_; })) return;
    }
    const std::int64_t version = check();
    if (version < 0 || version == seen_) continue;
    seen_ = version;
    on_change_();
  }
}

}  // namespace gamebot::eventstore::sqlite_detail
