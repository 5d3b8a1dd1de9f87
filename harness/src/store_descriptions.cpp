#include "gamebot/harness/store_descriptions.hpp"

#include <fmt/format.h>

#include <string_view>

namespace gamebot::harness {

namespace {

// Printable ASCII as is, anything else as \xNN, so binary payloads keep a failure message on
// one readable line.
std::string payload_text(std::string_view bytes) {
  std::string out = "\"";
  for (std::size_t i = 0; i < bytes.size() && i < kDescribedPayloadBytes; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out += '"';
  if (bytes.size() > kDescribedPayloadBytes) out += fmt::format("... ({} bytes)", bytes.size());
  return out;
}

}  // namespace

std::string describe(eventstore::WriteStatus status) {
  return std::string(eventstore::to_string(status));
}

std::string describe(eventstore::ReadStatus status) {
  return std::string(eventstore::to_string(status));
}

std::string describe(const eventstore::ExpectedVersion& expected) {
  using Kind = eventstore::ExpectedVersion::Kind;
  switch (expected.kind()) {
    case Kind::any:
      return "any";
    case Kind::no_stream:
      return "no_stream";
    case Kind::stream_exists:
      return "stream_exists";
    case Kind::exact:
      return fmt::format("exact {}", expected.version());
  }
  return "unknown";
}

std::string describe(const eventstore::WriteResult& result) {
  std::string out =
      fmt::format("{{status: {}, version: {}", describe(result.status), result.version);
  if (result.first_position != 0 || result.last_position != 0)
    out += fmt::format(", positions: {}..{}", result.first_position, result.last_position);
  if (result.event_id) out += ", event_id: " + result.event_id->to_string();
  return out + "}";
}

std::string describe(const eventstore::ReadResult& result) {
  std::string out =
      fmt::format("{{status: {}, events: {}", describe(result.status), result.events.size());
  if (!result.events.empty()) {
    out += " [";
    for (std::size_t i = 0; i < result.events.size() && i < kDescribedEvents; ++i) {
      if (i > 0) out += ", ";
      out += describe(result.events[i]);
    }
    if (result.events.size() > kDescribedEvents)
      out += fmt::format(", ... {} more", result.events.size() - kDescribedEvents);
    out += "]";
  }
  return out + "}";
}

std::string describe(const eventstore::RecordedEvent& event) {
  std::string out =
      fmt::format("{{number: {}, type: {}, stream: {}, version: {}, position: {}, id: {}, data: {}",
                  event.event_number, event.type, event.stream_id, event.stream_version,
                  event.global_position, event.event_id.to_string(), payload_text(event.data));
  if (!event.metadata.empty()) out += ", metadata: " + payload_text(event.metadata);
  return out + "}";
}

std::string describe(const eventstore::EventData& event) {
  std::string out = fmt::format("{{type: {}, data: {}", event.type, payload_text(event.data));
  if (!event.metadata.empty()) out += ", metadata: " + payload_text(event.metadata);
  if (event.id) out += ", id: " + event.id->to_string();
  if (event.causation_id) out += ", causation_id: " + event.causation_id->to_string();
  if (event.correlation_id) out += ", correlation_id: " + event.correlation_id->to_string();
  return out + "}";
}

}  // namespace gamebot::harness
