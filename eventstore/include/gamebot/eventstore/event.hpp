#pragma once

// The events a caller appends (EventData) and the events a read returns
// (RecordedEvent).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// An event to append. Owns its bytes; the store copies them.
struct EventData {
  std::string type;                     // event type name, non-empty UTF-8 (required)
  std::string data;                     // payload bytes, any content (default empty)
  std::string metadata;                 // metadata bytes, any content (default empty)
  std::optional<Uuid> id;               // event id; absent: a UUIDv7 is generated on append
  std::optional<Uuid> causation_id;     // id of the command/event that caused it (default none)
  std::optional<Uuid> correlation_id;   // id grouping a conversation of events (default none)
  std::optional<Timestamp> created_at;  // absent: the append time; set it to import history
};

// An event as read back. The string views point into `storage`, which every
// copy of the event shares, so an event (or any copy of it) may be kept as long
// as needed; a view taken out of it lives only as long as some copy does.
struct RecordedEvent {
  // Position in the stream being read: the stream version when reading the
  // event's own stream, the link's version in a stream of links, the global
  // position in `$all`. Subscription checkpoints count in this number.
  StreamVersion event_number = 0;
  Uuid event_id;
  std::string_view stream_id;          // the stream the event was appended to
  StreamVersion stream_version = 0;    // its version in that stream
  GlobalPosition global_position = 0;  // its position in `$all`
  std::string_view type;
  std::string_view data;
  std::string_view metadata;
  std::optional<Uuid> causation_id;
  std::optional<Uuid> correlation_id;
  Timestamp created_at{};
  std::shared_ptr<const void> storage;  // keeps the bytes behind the views alive
};

}  // namespace gamebot::eventstore
