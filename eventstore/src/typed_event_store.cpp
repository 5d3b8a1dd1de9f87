#include "gamebot/eventstore/typed_event_store.hpp"

#include <fmt/format.h>

namespace gamebot::eventstore {

namespace {

using serializers::SerializationError;
using serializers::SerializationErrorInfo;
using serializers::SerializationErrorKind;

SerializationErrorInfo with_event(SerializationErrorInfo info, const RecordedEvent& event) {
  const std::string where = fmt::format(
      "event {} of stream '{}' (position {}, id {}, stored type '{}')", event.stream_version,
      event.stream_id, event.global_position, event.event_id.to_string(), event.type);
  info.detail = info.detail.empty() ? where : fmt::format("{}: {}", where, info.detail);
  return info;
}

serializers::Codec codec_of(const RecordedEvent& event) {
  if (!event.data.empty()) {
    const auto first = static_cast<unsigned char>(event.data.front());
    if (first == '{') return serializers::Codec::json;
    // cereal's portable binary archive starts with its endianness flag.
    if (first == 0x00 || first == 0x01) return serializers::Codec::binary;
  }
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::malformed_input;
  info.detail = event.data.empty() ? "no data bytes"
                                   : fmt::format(
                                         "data starts with byte 0x{:02x}, which is "
                                         "neither JSON ('{{') nor portable binary",
                                         static_cast<unsigned char>(event.data.front()));
  throw EventDecodeError(std::move(info), event);
}

}  // namespace

EventDecodeError::EventDecodeError(SerializationErrorInfo info, const RecordedEvent& event)
    : SerializationError(with_event(std::move(info), event)),
      stream_id_(event.stream_id),
      stream_version_(event.stream_version),
      global_position_(event.global_position),
      event_id_(event.event_id),
      stored_type_(event.type) {}

TypedEventStore::TypedEventStore(EventStore& store, const serializers::TypeRegistry& registry,
                                 TypedStoreOptions options)
    : store_(&store), registry_(&registry), options_(options) {}

AppendResult TypedEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                     std::span<const TypedEventData> events) {
  std::vector<EventData> encoded;
  encoded.reserve(events.size());
  for (const TypedEventData& event : events) {
    serializers::Encoded value = registry_->encode_any(event.value, options_.codec);
    if (options_.verify_on_append) {
      const serializers::DecodedValue back =
          registry_->decode(value.type, value.version, value.codec, value.bytes);
      if (!back.type().equal(event.value, back.value())) {
        SerializationErrorInfo info;
        info.kind = SerializationErrorKind::malformed_input;
        info.type_name = value.type;
        info.version = value.version;
        info.codec = value.codec;
        info.detail =
            "the value decoded from its own encoding differs from the original "
            "(verify_on_append)";
        throw SerializationError(std::move(info));
      }
    }
    EventData& out = encoded.emplace_back();
    out.type = serializers::format_type_tag(value.type, value.version);
    out.data = std::move(value.bytes);
    out.metadata = event.metadata;
    out.id = event.id;
    out.causation_id = event.causation_id;
    out.correlation_id = event.correlation_id;
    out.created_at = event.created_at;
  }
  return store_->append(stream_id, expected, encoded);
}

AppendResult TypedEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                     std::initializer_list<TypedEventData> events) {
  return append(stream_id, expected,
                std::span<const TypedEventData>(events.begin(), events.size()));
}

TypedEvent TypedEventStore::decode(const RecordedEvent& event) const {
  try {
    const serializers::TypeTag tag = serializers::parse_type_tag(event.type);
    const serializers::Codec codec = codec_of(event);
    return TypedEvent{event, registry_->decode(tag.name, tag.version, codec, event.data)};
  } catch (const EventDecodeError&) {
    throw;
  } catch (const SerializationError& error) {
    throw EventDecodeError(error.info(), event);
  } catch (const std::exception& error) {
    SerializationErrorInfo info;
    info.kind = SerializationErrorKind::malformed_input;
    info.detail = error.what();
    throw EventDecodeError(std::move(info), event);
  }
}

bool event_type_matches(std::string_view stored_type, std::string_view wanted) noexcept {
  if (stored_type == wanted) return true;
  if (wanted.find("@v") != std::string_view::npos) return false;
  const std::size_t at = stored_type.rfind("@v");
  return at != std::string_view::npos && stored_type.substr(0, at) == wanted;
}

void TypedEventStore::throw_not_a(const RecordedEvent& event, const serializers::TypeInfo& wanted) {
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::type_mismatch;
  info.type_name = wanted.name();
  info.version = wanted.version();
  info.detail = fmt::format("expected {} ('{}')", wanted.type_display_name(), wanted.name());
  throw EventDecodeError(std::move(info), event);
}

TypedReadResult TypedEventStore::decode_all(const ReadResult& result) const {
  TypedReadResult typed;
  typed.status = result.status;
  typed.events.reserve(result.events.size());
  for (const RecordedEvent& event : result.events) typed.events.push_back(decode(event));
  return typed;
}

TypedReadResult TypedEventStore::read_stream_forward(std::string_view stream_id,
                                                     StreamVersion start, std::size_t count) {
  return decode_all(store_->read_stream_forward(stream_id, start, count));
}

TypedReadResult TypedEventStore::read_stream_backward(std::string_view stream_id,
                                                      StreamVersion start, std::size_t count) {
  return decode_all(store_->read_stream_backward(stream_id, start, count));
}

TypedReadResult TypedEventStore::read_all_forward(GlobalPosition start, std::size_t count) {
  return decode_all(store_->read_all_forward(start, count));
}

TypedReadResult TypedEventStore::read_all_backward(GlobalPosition start, std::size_t count) {
  return decode_all(store_->read_all_backward(start, count));
}

}  // namespace gamebot::eventstore
