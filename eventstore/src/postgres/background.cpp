#include "background.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/postgres_connection.hpp"

namespace gamebot::eventstore::postgres_detail {

namespace {
constexpr std::chrono::milliseconds kFirstBackoff{10};
}  // namespace

Background::Background(Settings settings, Hooks hooks)
    : settings_(std::move(settings)), hooks_(std::move(hooks)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "eventfd for the listener thread");
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    ::close(wake_fd_);
    throw;
  }
}

Background::~Background() {
  stop_.store(true);
  wake();
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

bool Background::wait_started(std::chrono::milliseconds timeout) {
  std::unique_lock lock(started_mutex_);
  started_changed_.wait_for(lock, timeout, [this] { return started_; });
  return backend_pid_.load() != 0;
}

void Background::request_notify() noexcept {
  // While the thread lingers after a NOTIFY it wakes by itself at the end of
  // the window; only a request that finds it idle needs to wake it.
  if (!notify_requested_.exchange(true) && !lingering_.load()) wake();
}

void Background::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

void Background::drop_connection() noexcept {
  connection_.reset();
  backend_pid_.store(0);
  lingering_.store(false);  // requests must wake the reconnect loop
}

bool Background::connect() noexcept {
  try {
    auto connection = repo::PostgresConnection::open(
        settings_.url.with_parameter("application_name",
                                     std::string(PostgresBackend::kListenerApplicationName)),
        settings_.connect);
    if (settings_.listen) {
      connection->execute_batch("LISTEN " + repo::quote_identifier(settings_.channel));
    }
    backend_pid_.store(connection->backend_pid());
    connection_ = std::move(connection);
    ++connections_;
    return true;
  } catch (const std::exception& error) {
    repo::logger()->warn("event store listener: cannot connect ({}); retrying", error.what());
    return false;
  }
}

// Hands libpq's queued notifications over; true if one came from another
// connection (our own NOTIFYs come back to us too and are ignored).
bool Background::drain_notifications() noexcept {
  PGconn* conn = repo::as_postgres(*connection_).native_handle();
  const int own_pid = backend_pid_.load();
  bool foreign = false;
  while (PGnotify* note = PQnotifies(conn)) {
    if (note->be_pid != own_pid) foreign = true;
    PQfreemem(note);
  }
  return foreign;
}

bool Background::send_notify() noexcept {
  try {
    connection_->execute("SELECT pg_notify($1, '')", settings_.channel);
    return true;
  } catch (const std::exception& error) {
    repo::logger()->warn("event store listener: NOTIFY failed ({}); reconnecting", error.what());
    return false;
  }
}

void Background::run() noexcept {
  auto backoff = kFirstBackoff;
  auto next_poll = std::chrono::steady_clock::now();
  auto next_record = std::chrono::steady_clock::now();
  auto next_notify = std::chrono::steady_clock::now();
  auto mark_started = [this] {
    {
      std::lock_guard lock(started_mutex_);
      started_ = true;
    }
    started_changed_.notify_all();
  };
  while (!stop_.load()) {
    if (!connection_) {
      if (!connect()) {
        mark_started();
        pollfd wait{wake_fd_, POLLIN, 0};
        ::poll(&wait, 1, static_cast<int>(backoff.count()));
        backoff = std::min(backoff * 2, std::max(settings_.interval, kFirstBackoff));
        std::uint64_t drained;
        [[maybe_unused]] const ssize_t got = ::read(wake_fd_, &drained, sizeof drained);
        continue;
      }
      backoff = kFirstBackoff;
      next_record = std::chrono::steady_clock::now();
      // Whatever happened while we were away is re-read from the cursors.
      hooks_.changed();
    }

    const auto now = std::chrono::steady_clock::now();
    if (now >= next_record) {
      try {
        hooks_.record(*connection_);
      } catch (const std::exception& error) {
        repo::logger()->warn("event store listener: logging the watermark failed: {}",
                             error.what());
      }
      mark_started();
      next_record = now + settings_.record_interval;
      if (connection_->broken()) {
        drop_connection();
        continue;
      }
      // Notifications that arrived during the statement wait in libpq's queue.
      if (drain_notifications()) hooks_.changed();
    }

    auto wake_at = next_record;
    if (notify_requested_.load() || lingering_.load()) wake_at = std::min(wake_at, next_notify);
    if (!settings_.listen) {
      if (std::chrono::steady_clock::now() >= next_poll) {
        try {
          hooks_.poll(*connection_);
        } catch (const std::exception& error) {
          repo::logger()->warn("event store poller: {}", error.what());
          if (connection_->broken() || !connection_->is_alive()) {
            drop_connection();
            continue;
          }
        }
        next_poll = std::chrono::steady_clock::now() + settings_.interval;
      }
      wake_at = std::min(wake_at, next_poll);
    }
    const auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             wake_at - std::chrono::steady_clock::now())
                             .count();
    const int timeout = static_cast<int>(std::max<std::int64_t>(0, (wait_us + 999) / 1000));

    PGconn* conn = repo::as_postgres(*connection_).native_handle();
    if (PQstatus(conn) == CONNECTION_BAD || PQsocket(conn) < 0) {
      drop_connection();
      continue;
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {PQsocket(conn), POLLIN, 0}};
    const int ready = ::poll(fds, 2, timeout);
    if (ready < 0 && errno != EINTR) {
      drop_connection();
      continue;
    }
    if (fds[0].revents & POLLIN) {
      std::uint64_t drained;
      [[maybe_unused]] const ssize_t got = ::read(wake_fd_, &drained, sizeof drained);
    }
    if (stop_.load()) break;

    bool lost = false;
    if (fds[1].revents != 0) {
      if (PQconsumeInput(conn) == 0 || PQstatus(conn) == CONNECTION_BAD) lost = true;
    }
    if (!lost && std::chrono::steady_clock::now() >= next_notify) {
      if (notify_requested_.exchange(false)) {
        if (send_notify()) {
          next_notify = std::chrono::steady_clock::now() + settings_.notify_interval;
          lingering_.store(true);
        } else {
          notify_requested_.store(true);  // send it after reconnecting
          lost = true;
        }
      } else {
        // The window passed quietly. A request that came while we lingered
        // did not wake us; the next turn sees it (its deadline is past).
        lingering_.store(false);
      }
    }
    if (!lost && drain_notifications()) hooks_.changed();
    if (lost) {
      repo::logger()->warn("event store listener: connection lost; reconnecting");
      drop_connection();
    }
  }
  // A process that appends and exits at once must still tell the others.
  if (notify_requested_.exchange(false) && (connection_ || connect())) send_notify();
  drop_connection();
}

}  // namespace gamebot::eventstore::postgres_detail
