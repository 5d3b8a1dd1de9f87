#include "replica.hpp"

#include <algorithm>

namespace gamebot::eventstore::postgres_detail {

void ReplicaProgress::add(ProbedWatermark probe) {
  if (!probes_.empty()) {
    ProbedWatermark& last = probes_.back();
    if (probe.safe == last.safe) {
      // The same watermark: the earlier WAL position is reached sooner.
      last.wal = std::min(last.wal, probe.wal);
      return;
    }
  }
  probes_.push_back(probe);
  // A replica further behind than this many probes gets a coarser history
  // (the oldest go first), which only makes it wait for a later one.
  if (probes_.size() > kKept) probes_.erase(probes_.begin() + 1);
}

GlobalPosition ReplicaProgress::usable(WalPosition replayed) {
  std::size_t best = probes_.size();
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    if (probes_[i].wal <= replayed) best = i;
  }
  if (best == probes_.size()) return 0;
  const GlobalPosition safe = probes_[best].safe;
  // Earlier probes have lower W: the best one serves instead of them.
  probes_.erase(probes_.begin(), probes_.begin() + static_cast<std::ptrdiff_t>(best));
  return safe;
}

std::optional<ProbedWatermark> ReplicaProgress::latest() const {
  if (probes_.empty()) return std::nullopt;
  return probes_.back();
}

ReplayWatcher::ReplayWatcher(std::function<WalPosition()> replayed, std::function<void()> reached,
                             std::chrono::milliseconds longest_pause)
    : replayed_(std::move(replayed)),
      reached_(std::move(reached)),
      longest_pause_(std::max(longest_pause, std::chrono::milliseconds(1))),
      thread_([this] { run(); }) {}

ReplayWatcher::~ReplayWatcher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ReplayWatcher::watch(WalPosition wal) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (wal <= target_) return;
    target_ = wal;
  }
  wake_.notify_all();
}

void ReplayWatcher::run() noexcept {
  std::unique_lock lock(mutex_);
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || target_ != 0; });
    if (stop_) return;
    const WalPosition target = target_;
    lock.unlock();
    bool reached = false;
    try {
      reached = replayed_() >= target;
    } catch (...) {
      reached = true;  // readers find the fault themselves and fail over
    }
    if (reached) reached_();
    lock.lock();
    if (reached) {
      if (target_ == target) target_ = 0;
      pause = std::chrono::microseconds(100);
      continue;
    }
    wake_.wait_for(lock, pause, [this] { return stop_; });
    pause = std::min<std::chrono::microseconds>(pause * 2, longest_pause_);
  }
}

}  // namespace gamebot::eventstore::postgres_detail
