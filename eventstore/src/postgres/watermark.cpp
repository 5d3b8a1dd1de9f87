#include "watermark.hpp"

#include <algorithm>

namespace gamebot::eventstore::postgres_detail {

WatermarkOutcome WatermarkTracker::evaluate(const WatermarkProbe& probe, Bounds& bounds) const {
  WatermarkOutcome outcome;
  GlobalPosition candidate = probe.last_reserved;
  for (const ProbedWriter& writer : probe.writers) {
    std::optional<GlobalPosition> bound;
    if (auto it = bounds_.find(writer.xid); it != bounds_.end()) {
      bound = it->second;  // marked at the previous probe too: keep what we knew
    } else if (have_previous_) {
      // Not marked at the previous probe (or not started yet): every position
      // it takes comes after that probe's L.
      bound = previous_last_;
    }
    // Both are lower bounds of its positions; the higher one is the better.
    if (writer.logged_bound && (!bound || *writer.logged_bound > *bound)) {
      bound = writer.logged_bound;
    }
    bounds.emplace(writer.xid, bound);
    if (bound) {
      candidate = std::min(candidate, *bound);
    } else {
      outcome.unresolved = true;
    }
  }
  outcome.safe = outcome.unresolved ? safe_ : std::max(safe_, candidate);
  return outcome;
}

WatermarkOutcome WatermarkTracker::apply(const WatermarkProbe& probe) {
  Bounds next;
  const WatermarkOutcome outcome = evaluate(probe, next);
  bounds_ = std::move(next);
  previous_last_ = probe.last_reserved;
  have_previous_ = true;
  safe_ = outcome.safe;
  return outcome;
}

WatermarkOutcome WatermarkTracker::peek(const WatermarkProbe& probe) const {
  Bounds scratch;
  return evaluate(probe, scratch);
}

}  // namespace gamebot::eventstore::postgres_detail
