#pragma once

// Waiting for events, in the manner of Commanded's assert_receive_event / wait_for_event.

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

#include "gamebot/eventstore/event_store.hpp"

namespace gamebot::harness {

// Polls `$all` of `store` (from position 1, then from after what was seen) until an event
// satisfies `predicate` or `timeout` passes. Returns the event, or nullopt on timeout. Store
// errors propagate. Thread-safe as the store is.
std::optional<eventstore::RecordedEvent> wait_for_event(
    eventstore::EventStore& store,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// wait_for_event() for an event of `type` (and `predicate`, when given); throws
// gamebot::Error(timeout) naming the type and the events seen when none arrives in time.
eventstore::RecordedEvent assert_receive_event(
    eventstore::EventStore& store, std::string_view type,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate = {},
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

}  // namespace gamebot::harness
