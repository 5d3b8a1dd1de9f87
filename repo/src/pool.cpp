#include "gamebot/repo/pool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <sstream>

#include "gamebot/core/uuid.hpp"
#include "gamebot/repo/logging.hpp"
#include "time_format.hpp"

namespace gamebot::repo {
namespace {

thread_local std::string tl_checkout_label;

std::string thread_name(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}

std::int64_t unix_micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string CheckoutInfo::to_string() const {
  double held =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - since_steady).count();
  return fmt::format("'{}' on thread {} since {} ({:.3f} s), connection #{}",
                     label.empty() ? "(no label)" : label, thread_name(thread),
                     internal::format_wall_clock(unix_micros(since)), held, connection_id);
}

PoolExhaustedError::PoolExhaustedError(std::string message, std::vector<CheckoutInfo> holders)
    : gamebot::Error(FaultClass::pool_exhausted, std::move(message)),
      holders_(std::move(holders)) {}

ScopedCheckoutLabel::ScopedCheckoutLabel(std::string label)
    : previous_(std::exchange(tl_checkout_label, std::move(label))) {}

ScopedCheckoutLabel::~ScopedCheckoutLabel() {
  tl_checkout_label = std::move(previous_);
}

const std::string& ScopedCheckoutLabel::current() noexcept {
  return tl_checkout_label;
}

PooledConnection& PooledConnection::operator=(PooledConnection&& other) noexcept {
  if (this != &other) {
    release();
    slot_ = std::move(other.slot_);
    pool_ = std::move(other.pool_);
  }
  return *this;
}

void PooledConnection::release() noexcept {
  if (!slot_) return;
  if (auto pool = pool_.lock()) {
    pool->give_back(std::move(slot_));
  } else {
    slot_.reset();  // the pool is gone: close the connection
  }
  pool_.reset();
}

struct Pool::State {
  mutable std::mutex mutex;
  std::condition_variable available;
  std::vector<std::unique_ptr<Slot>> idle;  // most recently returned last
  std::vector<Slot*> busy;                  // checked out, oldest first
  std::size_t open = 0;                     // idle + busy + being opened
  std::size_t min_size = 0;
  std::size_t max_size = 0;
  PoolStats stats;
  std::unique_ptr<Connection> anchor;  // keeps a pool-private in-memory database alive
};

namespace {
void check_bounds(std::size_t min_size, std::size_t max_size) {
  if (max_size == 0) {
    throw gamebot::Error(FaultClass::configuration, "pool max_size must be at least 1");
  }
  if (min_size > max_size) {
    throw gamebot::Error(FaultClass::configuration,
                         fmt::format("pool min_size {} exceeds max_size {}", min_size, max_size));
  }
}
}  // namespace

Pool::Pool(PrivateTag, DatabaseUrl url, PoolOptions options)
    : url_(std::move(url)), options_(std::move(options)), state_(std::make_unique<State>()) {
  state_->min_size = options_.min_size;
  state_->max_size = options_.max_size;
}

std::shared_ptr<Pool> Pool::create(DatabaseUrl url, PoolOptions options) {
  check_bounds(options.min_size, options.max_size);
  if (url.driver() == Driver::sqlite && url.sqlite_in_memory() &&
      url.sqlite_shared_name().empty()) {
    // Every connection of the pool must see the same database.
    url = url.with_database("gamebot-pool-" + Uuid::v4().to_string());
  }
  auto pool = std::make_shared<Pool>(PrivateTag{}, std::move(url), std::move(options));
  if (pool->url_.driver() == Driver::sqlite && pool->url_.sqlite_in_memory()) {
    pool->state_->anchor = connect(pool->url_, pool->options_.connect);
  }
  pool->fill_to_min();
  logger()->debug("pool for {} created (min {}, max {})", pool->url_.redacted(),
                  pool->options_.min_size, pool->options_.max_size);
  return pool;
}

Pool::~Pool() = default;

std::unique_ptr<Pool::Slot> Pool::open_slot() {
  auto slot = std::make_unique<Slot>();
  slot->connection = connect(url_, options_.connect);
  slot->created = std::chrono::steady_clock::now();
  slot->last_used = slot->created;
  slot->last_liveness_check = slot->created;
  return slot;
}

void Pool::fill_to_min() {
  for (;;) {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->open >= state_->min_size) return;
      ++state_->open;
    }
    std::unique_ptr<Slot> slot;
    try {
      slot = open_slot();
    } catch (...) {
      std::lock_guard lock(state_->mutex);
      --state_->open;
      ++state_->stats.open_failures;
      throw;
    }
    std::lock_guard lock(state_->mutex);
    ++state_->stats.opened;
    state_->idle.push_back(std::move(slot));
    state_->available.notify_one();
  }
}

bool Pool::usable(Slot& slot, std::chrono::steady_clock::time_point now, bool& expired) noexcept {
  expired = false;
  if (options_.max_lifetime.count() > 0 && now - slot.created > options_.max_lifetime) {
    expired = true;
    return false;
  }
  Connection& c = *slot.connection;
  if (c.broken()) return false;
  if (now - slot.last_liveness_check >= options_.liveness_check_interval) {
    if (!c.is_alive()) return false;
    slot.last_liveness_check = now;
  }
  if (now - slot.last_used > options_.validate_after_idle) {
    try {
      c.ping();
    } catch (const std::exception& e) {
      logger()->warn("pool {}: idle connection #{} failed validation: {}", url_.redacted(), c.id(),
                     e.what());
      return false;
    }
  }
  return true;
}

PooledConnection Pool::checkout(std::string_view label) {
  return checkout(label, options_.checkout_timeout);
}

PooledConnection Pool::checkout(std::string_view label, std::chrono::milliseconds timeout) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  bool waited = false;
  std::chrono::steady_clock::time_point wait_start;
  std::chrono::steady_clock::time_point deadline;
  auto hand_out = [&](std::unique_ptr<Slot> slot, std::chrono::steady_clock::time_point now) {
    CheckoutInfo& owner = slot->owner;
    owner.label.assign(label.empty() ? std::string_view(tl_checkout_label) : label);
    owner.thread = std::this_thread::get_id();
    owner.since = std::chrono::system_clock::now();
    owner.since_steady = now;
    owner.connection_id = slot->connection->id();
    ++s.stats.checkouts;
    if (waited) s.stats.wait_time += now - wait_start;
    s.stats.peak_in_use = std::max(s.stats.peak_in_use, s.busy.size());
    return PooledConnection(std::move(slot), weak_from_this());
  };
  for (;;) {
    if (!s.idle.empty()) {
      std::unique_ptr<Slot> slot = std::move(s.idle.back());
      s.idle.pop_back();
      s.busy.push_back(slot.get());
      lock.unlock();
      auto now = std::chrono::steady_clock::now();
      bool expired = false;
      bool ok = usable(*slot, now, expired);
      lock.lock();
      if (ok) return hand_out(std::move(slot), now);
      s.busy.erase(std::find(s.busy.begin(), s.busy.end(), slot.get()));
      --s.open;
      if (expired) {
        ++s.stats.expired;
      } else {
        ++s.stats.replaced;
      }
      lock.unlock();
      if (!expired) {
        logger()->warn("pool {}: connection #{} is dead (closed by the server?); replacing it",
                       url_.redacted(), slot->connection->id());
      }
      slot.reset();
      lock.lock();
      continue;
    }
    if (s.open < s.max_size) {
      ++s.open;
      lock.unlock();
      std::unique_ptr<Slot> slot;
      try {
        slot = open_slot();
      } catch (const std::exception& e) {
        lock.lock();
        --s.open;
        ++s.stats.open_failures;
        s.available.notify_one();
        lock.unlock();
        logger()->warn("pool {}: opening a connection failed: {}", url_.redacted(), e.what());
        throw;
      }
      lock.lock();
      ++s.stats.opened;
      s.busy.push_back(slot.get());
      auto created = slot->created;
      return hand_out(std::move(slot), created);
    }
    auto now = std::chrono::steady_clock::now();
    if (!waited) {
      waited = true;
      wait_start = now;
      deadline = now + timeout;
      ++s.stats.waits;
    }
    if (now >= deadline || s.available.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (!s.idle.empty() || s.open < s.max_size) continue;
      ++s.stats.timeouts;
      s.stats.wait_time += std::chrono::steady_clock::now() - wait_start;
      std::vector<CheckoutInfo> holders;
      for (Slot* held : s.busy) holders.push_back(held->owner);
      std::size_t max_size = s.max_size;
      lock.unlock();
      std::string list;
      for (const auto& holder : holders) {
        list += list.empty() ? "" : "; ";
        list += holder.to_string();
      }
      std::string requester(label.empty() ? std::string_view(tl_checkout_label) : label);
      std::string message = fmt::format(
          "no connection free within {} ms in the pool for {} (max_size {}, {} checked out); "
          "requested by '{}' on thread {}; held by: {}",
          timeout.count(), url_.redacted(), max_size, holders.size(),
          requester.empty() ? "(no label)" : requester, thread_name(std::this_thread::get_id()),
          list.empty() ? "(connections being opened)" : list);
      logger()->warn("pool exhausted: {}", message);
      throw PoolExhaustedError(std::move(message), std::move(holders));
    }
  }
}

void Pool::give_back(std::unique_ptr<Slot> slot) noexcept {
  bool reclaimed = false;
  {
    std::lock_guard lock(state_->mutex);
    reclaimed = slot->reclaimed;
  }
  if (reclaimed) {
    slot.reset();  // no longer the pool's (reclaim_held_by): closed, outside the lock
    return;
  }
  Connection& c = *slot->connection;
  bool keep = !c.broken();
  bool dirty = false;
  if (keep && (c.transaction_depth() != 0 || c.in_transaction())) {
    dirty = true;
    logger()->warn(
        "pool {}: connection #{} returned inside an open transaction by {}; rolling back",
        url_.redacted(), c.id(), slot->owner.to_string());
    keep = c.reset_transaction_state();
  }
  auto now = std::chrono::steady_clock::now();
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (dirty) ++s.stats.dirty_returns;
  auto it = std::find(s.busy.begin(), s.busy.end(), slot.get());
  if (it != s.busy.end()) s.busy.erase(it);
  bool expired = false;
  if (keep && options_.max_lifetime.count() > 0 && now - slot->created > options_.max_lifetime) {
    keep = false;
    expired = true;
  }
  if (keep && s.open > s.max_size) keep = false;
  std::unique_ptr<Slot> discarded;  // closed after the lock is released
  if (keep) {
    slot->last_used = now;
    s.idle.push_back(std::move(slot));
  } else {
    --s.open;
    if (expired) {
      ++s.stats.expired;
    } else if (c.broken()) {
      ++s.stats.replaced;
    }
    discarded = std::move(slot);
  }
  s.available.notify_one();
  lock.unlock();
  if (discarded && discarded->connection->broken()) {
    logger()->warn("pool {}: discarding broken connection #{} returned by {}", url_.redacted(),
                   discarded->connection->id(), discarded->owner.to_string());
  }
}

void Pool::resize(std::size_t min_size, std::size_t max_size) {
  check_bounds(min_size, max_size);
  std::vector<std::unique_ptr<Slot>> surplus;
  {
    std::lock_guard lock(state_->mutex);
    state_->min_size = min_size;
    state_->max_size = max_size;
    while (state_->open > max_size && !state_->idle.empty()) {
      surplus.push_back(std::move(state_->idle.front()));
      state_->idle.erase(state_->idle.begin());
      --state_->open;
    }
    state_->available.notify_all();
  }
  surplus.clear();
  logger()->info("pool {} resized to min {}, max {}", url_.redacted(), min_size, max_size);
  fill_to_min();
}

PoolStats Pool::stats() const {
  std::lock_guard lock(state_->mutex);
  PoolStats stats = state_->stats;
  stats.size = state_->open;
  stats.idle = state_->idle.size();
  stats.in_use = state_->busy.size();
  stats.min_size = state_->min_size;
  stats.max_size = state_->max_size;
  return stats;
}

std::vector<CheckoutInfo> Pool::checked_out() const {
  std::lock_guard lock(state_->mutex);
  std::vector<CheckoutInfo> out;
  for (Slot* slot : state_->busy) out.push_back(slot->owner);
  return out;
}

std::vector<ReclaimedConnection> Pool::reclaim_held_by(std::thread::id thread) {
  std::vector<Slot*> taken;
  {
    std::lock_guard lock(state_->mutex);
    auto& busy = state_->busy;
    for (auto it = busy.begin(); it != busy.end();) {
      if ((*it)->owner.thread != thread) {
        ++it;
        continue;
      }
      (*it)->reclaimed = true;
      taken.push_back(*it);
      it = busy.erase(it);
      --state_->open;
    }
    state_->available.notify_all();
  }
  std::vector<ReclaimedConnection> out;
  for (Slot* slot : taken) {
    ReclaimedConnection reclaimed;
    reclaimed.holder = slot->owner;
    Connection& c = *slot->connection;
    reclaimed.open_transaction = c.transaction_depth() != 0 || c.in_transaction();
    reclaimed.transaction_begun_at = c.transaction_begun_at(1);
    if (reclaimed.open_transaction && !c.broken())
      reclaimed.rolled_back = c.reset_transaction_state();
    logger()->warn("pool {}: took back connection #{} never returned by {}{}", url_.redacted(),
                   c.id(), slot->owner.to_string(),
                   reclaimed.open_transaction ? " (inside an open transaction, rolled back)" : "");
    out.push_back(std::move(reclaimed));
  }
  return out;
}

std::string Pool::leak_report() const {
  auto holders = checked_out();
  if (holders.empty()) return {};
  std::string out = fmt::format(
      "{} connection(s) of the pool for {} still checked out:", holders.size(), url_.redacted());
  for (const auto& holder : holders) out += "\n  " + holder.to_string();
  return out;
}

}  // namespace gamebot::repo
