#include "gamebot/harness/wait.hpp"

#include <thread>

namespace gamebot::harness {

namespace {

constexpr eventstore::GlobalPosition kFirstPosition = 1;
constexpr std::size_t kTypesListed = 10;

}  // namespace

std::optional<eventstore::RecordedEvent> wait_for_event(
    eventstore::EventStore& store,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate,
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  eventstore::GlobalPosition next = kFirstPosition;
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
  std::size_t of_type = 0;
  eventstore::GlobalPosition last = 0;
  std::string types;
  auto found = wait_for_event(
      store,
      [&](const eventstore::RecordedEvent& event) {
        if (seen < kTypesListed) {
          if (seen > 0) types += ", ";
          types += event.type;
        }
        ++seen;
        last = event.global_position;
        if (!eventstore::event_type_matches(event.type, type)) return false;
        ++of_type;
        return !predicate || predicate(event);
      },
      timeout);
  if (found) return *found;
  std::string message = "no event of type '" + std::string(type) + "'";
  if (predicate) message += " matching the predicate";
  message += " arrived within " + std::to_string(timeout.count()) + " ms, watching $all from " +
             "position " + std::to_string(kFirstPosition) + "; ";
  if (seen == 0) {
    message += "no events seen";
  } else {
    message += std::to_string(seen) + " event(s) seen up to position " + std::to_string(last);
    if (predicate) message += " (" + std::to_string(of_type) + " of that type)";
    message += ": " + types + (seen > kTypesListed ? ", ..." : "");
  }
  throw EventNotReceived(message);
}

}  // namespace gamebot::harness
