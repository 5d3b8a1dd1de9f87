#include "gamebot/repo/connection.hpp"

#include <atomic>

#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/repo/sqlite_connection.hpp"

namespace gamebot::repo {
namespace {
std::atomic<std::uint64_t> next_connection_id{1};
}  // namespace

Connection::Connection(DatabaseUrl url)
    : url_(std::move(url)), id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)) {}

Connection::~Connection() = default;

std::string Connection::transaction_begun_at(int level) const {
  if (level < 1 || level > depth_ || static_cast<std::size_t>(level) > begun_at_.size()) return {};
  const SourcePlace& where = begun_at_[static_cast<std::size_t>(level) - 1];
  return std::string(where.file) + ":" + std::to_string(where.line);
}

bool Connection::reset_transaction_state() noexcept {
  if (broken_) {
    depth_ = 0;
    return false;
  }
  try {
    if (in_transaction()) run_control("ROLLBACK");
    depth_ = 0;
    return !in_transaction() && !broken_;
  } catch (const std::exception& e) {
    logger()->warn("connection #{}: rollback while resetting failed: {}", id_, e.what());
    depth_ = 0;
    mark_broken();
    return false;
  }
}

std::unique_ptr<Connection> connect(const DatabaseUrl& url, const ConnectOptions& options) {
  std::unique_ptr<Connection> connection;
  if (url.driver() == Driver::sqlite) {
    connection = SqliteConnection::open(url, options.sqlite);
  } else {
    connection = PostgresConnection::open(url, options.postgres);
  }
  logger()->debug("opened connection #{} to {}", connection->id(), url.redacted());
  return connection;
}

std::unique_ptr<Connection> connect(std::string_view url, const ConnectOptions& options) {
  return connect(DatabaseUrl::parse(url), options);
}

}  // namespace gamebot::repo
