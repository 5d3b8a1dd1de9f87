#pragma once

// How a failing test shows the event store's values: one line each, fields by name, payloads as
// escaped text cut at kDescribedPayloadBytes. The Catch2 StringMakers (catch2_printers.hpp) and
// the GoogleTest printers (gtest_printers.hpp) both print through these, so the two frameworks
// show a value the same way.

#include <cstddef>
#include <string>

#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::harness {

// Payload bytes (data, metadata) shown before "... (N bytes)"; bytes, not characters.
inline constexpr std::size_t kDescribedPayloadBytes = 64;
// Events of a ReadResult listed before "... N more".
inline constexpr std::size_t kDescribedEvents = 5;

// "wrong_expected_version"
std::string describe(eventstore::WriteStatus status);
// "stream_not_found"
std::string describe(eventstore::ReadStatus status);
// "any", "no_stream", "stream_exists" or "exact 3"
std::string describe(const eventstore::ExpectedVersion& expected);
// "{status: ok, version: 2, positions: 4..5}" or "{status: wrong_expected_version, version: 1}"
std::string describe(const eventstore::WriteResult& result);
// "{status: ok, events: 2 [{number: 0, type: ..., ...}, ...]}"
std::string describe(const eventstore::ReadResult& result);
// "{number: 0, type: player_joined, stream: game-1, version: 0, position: 1, id: ..., data: ...}"
std::string describe(const eventstore::RecordedEvent& event);
// "{type: player_joined, data: {\"g\":1}}" plus metadata and ids when set
std::string describe(const eventstore::EventData& event);

}  // namespace gamebot::harness
