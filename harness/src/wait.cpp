#include "gamebot/harness/wait.hpp"

#include <thread>

#include "gamebot/core/error.hpp"

namespace gamebot::harness {

std::optional<eventstore::RecordedEvent> wait_for_event(
    eventstore::EventStore& store,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate,
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  eventstore::GlobalPosition next = 1;
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    auto result = store.read_all_forward(next, 1000);
    for (const auto& event : result.events) {
      next = event.global_position + 1;
      if (predicate(event)) return event;
    }
    if (!result.events.empty()) continue;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

eventstore::RecordedEvent assert_receive_event(
    eventstore::EventStore& store, std::string_view type,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate,
    std::chrono::milliseconds timeout) {
  std::size_t seen = 0;
  auto found = wait_for_event(
      store,
      [&](const eventstore::RecordedEvent& event) {
        ++seen;
        return event.type == type && (!predicate || predicate(event));
      },
      timeout);
  if (found) return *found;
  throw Error(FaultClass::timeout, "no event of type '" + std::string(type) +
                                       "' matching the predicate arrived within " +
                                       std::to_string(timeout.count()) + " ms (" +
                                       std::to_string(seen) + " events seen)");
}

}  // namespace gamebot::harness
