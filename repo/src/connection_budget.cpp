#include "gamebot/repo/connection_budget.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/postgres_connection.hpp"

namespace gamebot::repo {

namespace {

constexpr std::chrono::seconds kReserveProgress{5};

}  // namespace

ConnectionBudget::Slot::Slot(Slot&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), may_wait_(other.may_wait_) {}

ConnectionBudget::Slot& ConnectionBudget::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (budget_ != nullptr) budget_->give_back();
    budget_ = std::exchange(other.budget_, nullptr);
    may_wait_ = other.may_wait_;
  }
  return *this;
}

ConnectionBudget::Slot::~Slot() {
  if (budget_ != nullptr) budget_->give_back();
}

ConnectionBudget::ConnectionBudget(std::size_t cap) : cap_(std::max<std::size_t>(1, cap)) {}

ConnectionBudget::~ConnectionBudget() {
  release_reserve();
}

ConnectionBudget::Admission ConnectionBudget::admit(const DatabaseUrl& url,
                                                    std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (!placeholders_.empty()) {
    auto same = std::find_if(placeholders_.begin(), placeholders_.end(),
                             [&](const auto& placeholder) { return placeholder->url() == url; });
    if (same == placeholders_.end()) same = placeholders_.end() - 1;
    std::unique_ptr<PostgresConnection> placeholder = std::move(*same);
    placeholders_.erase(same);
    ++open_;
    lock.unlock();
    Admission admission{Slot(this, true), nullptr};
    // A live one to `url` is the connection; any other is closed before the caller opens.
    if (placeholder->url() == url && placeholder->is_alive()) {
      admission.placeholder = std::move(placeholder);
    } else {
      std::lock_guard relock(mutex_);
      ++opened_;
    }
    return admission;
  }
  const bool holding_nothing = open_ == 0;
  if (!freed_.wait_for(lock, wait, [&] { return open_ < cap_; })) {
    throw Error(FaultClass::pool_exhausted,
                "connection budget: all " + std::to_string(cap_) +
                    " connections this run may open are open, and none closed within " +
                    std::to_string(wait.count()) + " ms");
  }
  ++open_;
  ++opened_;
  peak_ = std::max(peak_, open_);
  return Admission{Slot(this, holding_nothing && open_ == 1), nullptr};
}

void ConnectionBudget::give_back() noexcept {
  {
    std::lock_guard lock(mutex_);
    --open_;
  }
  freed_.notify_all();
}

void ConnectionBudget::reserve(const DatabaseUrl& url, std::size_t count,
                               const PostgresOptions& options) {
  const std::vector<DatabaseUrl> urls(count, url);
  reserve(urls, options);
}

void ConnectionBudget::reserve(std::span<const DatabaseUrl> wanted,
                               const PostgresOptions& options) {
  std::size_t count = wanted.size();
  {
    std::lock_guard lock(mutex_);
    count = std::min(count, cap_ - std::min(cap_, open_ + placeholders_.size()));
  }
  if (count == 0) return;
  const DatabaseUrl& url = wanted.front();
  std::vector<DatabaseUrl> urls(wanted.begin(),
                                wanted.begin() + static_cast<std::ptrdiff_t>(count));
  auto guessed = [&] {
    return std::any_of(urls.begin(), urls.end(), [&](const DatabaseUrl& u) { return u != url; });
  };
  PostgresOptions unbudgeted = options;
  unbudgeted.budget = nullptr;  // placeholders are counted here, not admitted
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_progress = start;
  auto pause = std::chrono::milliseconds(10);
  std::minstd_rand jitter(static_cast<unsigned>(start.time_since_epoch().count()));
  for (;;) {
    std::vector<std::unique_ptr<PostgresConnection>> got;
    try {
      // Together: a short-lived process pays about one connection set-up for its whole set.
      got = PostgresConnection::open_together(urls, unbudgeted);
    } catch (const DatabaseError& error) {
      if (error.sqlstate() != "53300") {
        if (!guessed()) throw;
        std::fill(urls.begin(), urls.end(), url);
        continue;
      }
      // open_together() closed what it got: nothing is held while the others finish.
      const auto now = Clock::now();
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
      if (waited >= options.connection_slot_wait) {
        throw DatabaseError(error.fault(),
                            fmt::format("{} (no connection slot freed within {:.1f} s)",
                                        error.what(), waited.count() / 1000.0),
                            error.details());
      }
      if (now >= next_progress) {
        logger()->warn(
            "PostgreSQL at {} has no free connection slot for the {} this run needs at least "
            "(too many clients, SQLSTATE 53300); holding none while waiting ({:.1f} s so far, "
            "up to {:.0f} s)",
            url.describe_target(), count, waited.count() / 1000.0,
            options.connection_slot_wait.count() / 1000.0);
        next_progress = now + kReserveProgress;
      }
      std::this_thread::sleep_for(pause +
                                  std::chrono::milliseconds(jitter() % (pause.count() + 1)));
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
      continue;
    }
    std::lock_guard lock(mutex_);
    opened_ += got.size();
    for (auto& connection : got) placeholders_.push_back(std::move(connection));
    peak_ = std::max(peak_, open_ + placeholders_.size());
    return;
  }
}

void ConnectionBudget::release_reserve() noexcept {
  std::vector<std::unique_ptr<PostgresConnection>> closing;
  {
    std::lock_guard lock(mutex_);
    closing.swap(placeholders_);
  }
  closing.clear();
  freed_.notify_all();
}

std::size_t ConnectionBudget::open() const {
  std::lock_guard lock(mutex_);
  return open_ + placeholders_.size();
}

std::size_t ConnectionBudget::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}

std::size_t ConnectionBudget::opened() const {
  std::lock_guard lock(mutex_);
  return opened_;
}

std::size_t ConnectionBudget::placeholders() const {
  std::lock_guard lock(mutex_);
  return placeholders_.size();
}

}  // namespace gamebot::repo
