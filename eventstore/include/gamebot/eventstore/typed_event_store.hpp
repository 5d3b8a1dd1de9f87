#pragma once

// The typed layer: append C++ event values encoded through a
// serializers::TypeRegistry and read them back decoded.
//
// Storage format (any backend): RecordedEvent::type is the serializers type tag
// "<name>@v<version>" (serializers/type_tag.hpp) and `data` is the codec's
// bytes. Stored rows keep the version (decoding needs it to upcast), so code
// that looks for events by their registered name goes through
// event_type_matches(): "player_joined" matches "player_joined@v1" and @v2; the codec is recognised
// from them (JSON starts with '{', portable binary with its endianness byte 0x00/0x01), so a store
// may hold both. Metadata stays the caller's bytes. Older versions are upcast on decode.
//
// Errors: encoding problems throw serializers::SerializationError before
// anything is written; a stored event that does not decode throws
// EventDecodeError (a SerializationError, FaultClass::serialization) naming
// the stream, version, position and stored type, never a connectivity fault.

#include <any>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/serializers/serializers.hpp"

namespace gamebot::eventstore {

struct TypedStoreOptions {
  serializers::Codec codec = serializers::Codec::json;  // encoding of appended values
  // Decode every encoded value again and compare it with the original before
  // appending; a failure or a difference throws SerializationError and the
  // batch is not appended. Lets in-memory tests catch serializer faults.
  bool verify_on_append = false;
};

// Whether an event stored with type `stored_type` is a `wanted`. A registered
// name ("player_joined") matches that name at every version
// ("player_joined@v1", "player_joined@v2"); a full tag ("player_joined@v2"),
// or a type the typed layer did not write, matches only itself. The one rule
// for "is this event a ..." that TypedEventStore::holds() and the harness's
// waits use. Pure.
bool event_type_matches(std::string_view stored_type, std::string_view wanted) noexcept;

// A value to append, with its envelope.
struct TypedEventData {
  std::any value;                       // a registered type (required)
  std::string metadata;                 // metadata bytes (default empty)
  std::optional<Uuid> id;               // absent: a UUIDv7 is generated
  std::optional<Uuid> causation_id;     // default none
  std::optional<Uuid> correlation_id;   // default none
  std::optional<Timestamp> created_at;  // absent: the append time
};

// A recorded event and its decoded value (always the registered current type).
struct TypedEvent {
  RecordedEvent recorded;
  serializers::DecodedValue value;

  template <class T>
  bool is() const noexcept {
    return value.holds<T>();
  }
  // Throws SerializationError (type_mismatch) if the value is not a T.
  template <class T>
  const T& get() const {
    return value.get<T>();
  }
};

struct TypedReadResult {
  ReadStatus status = ReadStatus::ok;
  std::vector<TypedEvent> events;

  bool ok() const noexcept { return status == ReadStatus::ok; }
};

// A stored event that cannot be decoded. The message reads like
//   "serialization: cannot decode 'guess_made' v2 (json) at $.value0.round:
//    event 3 of stream 'game-7' (position 41, id ...): <cause>"
class EventDecodeError : public serializers::SerializationError {
 public:
  EventDecodeError(serializers::SerializationErrorInfo info, const RecordedEvent& event);

  const std::string& stream_id() const noexcept { return stream_id_; }
  StreamVersion stream_version() const noexcept { return stream_version_; }
  GlobalPosition global_position() const noexcept { return global_position_; }
  const Uuid& event_id() const noexcept { return event_id_; }
  // RecordedEvent::type as stored ("guess_made@v2").
  const std::string& stored_type() const noexcept { return stored_type_; }

 private:
  std::string stream_id_;
  StreamVersion stream_version_;
  GlobalPosition global_position_;
  Uuid event_id_;
  std::string stored_type_;
};

// Borrows an EventStore and a TypeRegistry (both must outlive it; the registry's
// registration must be over). Thread-safe like the store.
class TypedEventStore {
 public:
  TypedEventStore(EventStore& store, const serializers::TypeRegistry& registry,
                  TypedStoreOptions options = {});

  // Encodes and appends the batch atomically (EventStore::append semantics).
  AppendResult append(std::string_view stream_id, ExpectedVersion expected,
                      std::span<const TypedEventData> events);
  AppendResult append(std::string_view stream_id, ExpectedVersion expected,
                      std::initializer_list<TypedEventData> events);
  template <class T>
  AppendResult append_value(std::string_view stream_id, ExpectedVersion expected, const T& value) {
    const TypedEventData event{std::any(value), {}, {}, {}, {}, {}};
    return append(stream_id, expected, std::span<const TypedEventData>(&event, 1));
  }

  // The stored type of T ("<name>@v<current version>"). Throws SerializationError
  // (unregistered_type).
  template <class T>
  std::string type_of() const {
    const serializers::TypeInfo& info = registry_->at<T>();
    return serializers::format_type_tag(info.name(), info.version());
  }

  // Decodes one recorded event (e.g. from a subscription). Throws EventDecodeError.
  TypedEvent decode(const RecordedEvent& event) const;
  // Decodes into T (upcast if older). Throws EventDecodeError, also when the
  // event holds another type.
  template <class T>
  T decode_as(const RecordedEvent& event) const {
    TypedEvent typed = decode(event);
    if (!typed.value.holds<T>()) throw_not_a(event, registry_->at<T>());
    return std::move(typed.value).take<T>();
  }
  // True if `event` was stored as T (any version of T's registered name).
  template <class T>
  bool holds(const RecordedEvent& event) const {
    return event_type_matches(event.type, registry_->at<T>().name());
  }

  // EventStore reads, decoded.
  TypedReadResult read_stream_forward(std::string_view stream_id, StreamVersion start = 0,
                                      std::size_t count = kDefaultReadCount);
  TypedReadResult read_stream_backward(std::string_view stream_id, StreamVersion start = kLatest,
                                       std::size_t count = kDefaultReadCount);
  TypedReadResult read_all_forward(GlobalPosition start = 0, std::size_t count = kDefaultReadCount);
  TypedReadResult read_all_backward(GlobalPosition start = kLatest,
                                    std::size_t count = kDefaultReadCount);

  // Commanded's wait_for_event: skips (and, if persistent, acks) events until
  // one of type T satisfying `predicate` (empty: any T) arrives, and returns it
  // decoded; nullopt after `timeout`. The returned event is not acked.
  template <class T>
  std::optional<T> wait_for(Subscription& subscription,
                            const std::function<bool(const T&)>& predicate,
                            std::chrono::milliseconds timeout) const {
    std::optional<RecordedEvent> event = subscription.wait_for(
        [&](const RecordedEvent& e) {
          return holds<T>(e) && (!predicate || predicate(decode_as<T>(e)));
        },
        timeout);
    if (!event) return std::nullopt;
    return decode_as<T>(*event);
  }

  EventStore& store() const noexcept { return *store_; }
  const serializers::TypeRegistry& registry() const noexcept { return *registry_; }
  const TypedStoreOptions& options() const noexcept { return options_; }

 private:
  TypedReadResult decode_all(const ReadResult& result) const;
  [[noreturn]] static void throw_not_a(const RecordedEvent& event,
                                       const serializers::TypeInfo& wanted);

  EventStore* store_;
  const serializers::TypeRegistry* registry_;
  TypedStoreOptions options_;
};

}  // namespace gamebot::eventstore
