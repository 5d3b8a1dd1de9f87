#pragma once

// The JSON-lines shapes of gamebot-store (see tools/README.md), on rapidjson
// (the JSON library cereal already brings in):
//
//   event     {"stream","version","position","event_number"?,"id","type",
//              "data" | "data_base64", "metadata" | "metadata_base64",
//              "causation_id"?, "correlation_id"?, "created_at"}
//   link      {"kind":"link","stream","version","id"}
//   deleted   {"kind":"deleted","stream"}
//   snapshot  {"kind":"snapshot","source","source_version","source_type",
//              "data" | "data_base64", "metadata" | "metadata_base64","created_at"}
//   subscription {"name","stream","checkpoint","head","lag","lease_token","held",
//                 "holder"?}
//
// Payload bytes are written as JSON ("data") when they are a JSON text that
// rapidjson writes back byte for byte, else as base64 ("data_base64"); on
// input a JSON value is stored as its compact text, so export -> import keeps
// every byte. created_at is UTC ISO 8601 with microseconds.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/results.hpp"

namespace gamebot::tools {

enum class PayloadMode {
  automatic,  // JSON when it round-trips exactly, else base64
  base64,     // always base64
};

// "2026-11-27T15:03:51.123456Z".
std::string format_timestamp(eventstore::Timestamp time);
// Parses format_timestamp's output; nullopt for anything else.
std::optional<eventstore::Timestamp> parse_timestamp(std::string_view text);

// One event line (no trailing newline). with_event_number: add "event_number"
// (stream reads, where links carry the link's number).
std::string event_line(const eventstore::RecordedEvent& event, PayloadMode mode,
                       bool with_event_number);
std::string link_line(std::string_view stream, eventstore::StreamVersion version, const Uuid& id);
std::string deleted_line(std::string_view stream);
std::string snapshot_line(const eventstore::Snapshot& snapshot, PayloadMode mode);
std::string stream_line(const eventstore::StreamInfo& info);
// {"name","stream","checkpoint","head","lag","lease_token","held","holder"?}
std::string subscription_line(const eventstore::SubscriptionInfo& info);

// `text` as a JSON string literal.
std::string json_string(std::string_view text);

// A parsed input line.
struct InputRecord {
  enum class Kind { event, link, deleted, snapshot };
  Kind kind = Kind::event;
  std::string stream;                                // event, link, deleted
  std::optional<eventstore::StreamVersion> version;  // event (optional), link (required)
  eventstore::EventData event;                       // event
  Uuid link_target;                                  // link
  eventstore::Snapshot snapshot;                     // snapshot
};

// Parses one line; throws gamebot::Error(serialization) "line N: ..." for
// malformed JSON, missing or mistyped fields, bad ids, timestamps or base64.
InputRecord parse_input_line(std::string_view line, std::size_t line_number);

}  // namespace gamebot::tools
