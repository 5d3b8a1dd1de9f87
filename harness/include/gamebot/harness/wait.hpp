#pragma once

// Waiting for events, in the manner of Commanded's assert_receive_event / wait_for_event.
//
// An event that never arrives is the test's failure, not the infrastructure's: the assert_
// functions throw EventNotReceived (a std::runtime_error, deliberately not a gamebot::Error, so
// no adapter reads it as a timeout of a database operation). Store errors propagate as they are.
// Types are compared by eventstore::event_type_matches(): a registered name matches the
// "<name>@v<version>" the typed layer stores.

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/typed_event_store.hpp"

namespace gamebot::harness {

// The event a test waited for did not arrive in time. what() names the wanted type, whether a
// predicate was given, the stream and position watched and the types seen (the first 10).
class EventNotReceived : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Polls `$all` of `store` (from position 1, then from after what was seen) until an event
// satisfies `predicate` or `timeout` passes. Returns the event, or nullopt on timeout. Store
// errors propagate. Thread-safe as the store is.
std::optional<eventstore::RecordedEvent> wait_for_event(
    eventstore::EventStore& store,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// wait_for_event() for an event of `type` (a registered name or a full "<name>@v<n>" tag) that
// also satisfies `predicate`, when given; throws EventNotReceived when none arrives in time.
eventstore::RecordedEvent assert_receive_event(
    eventstore::EventStore& store, std::string_view type,
    const std::function<bool(const eventstore::RecordedEvent&)>& predicate = {},
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// The typed form: waits on typed.store() for an event of T's registered name (any version,
// upcast on decode) whose value satisfies `predicate`, when given, and returns the value.
// Throws EventNotReceived as above; a matching event that does not decode throws
// eventstore::EventDecodeError.
template <class T>
T assert_receive_event(eventstore::TypedEventStore& typed,
                       const std::function<bool(const T&)>& predicate = {},
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  const std::string_view name = typed.registry().template at<T>().name();
  std::function<bool(const eventstore::RecordedEvent&)> decoded_predicate;
  if (predicate) {
    decoded_predicate = [&](const eventstore::RecordedEvent& event) {
      return predicate(typed.template decode_as<T>(event));
    };
  }
  return typed.template decode_as<T>(
      assert_receive_event(typed.store(), name, decoded_predicate, timeout));
}

}  // namespace gamebot::harness
