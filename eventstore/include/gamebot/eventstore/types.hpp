#pragma once

// Basic value types of the event store: versions, positions, timestamps,
// expected versions and the reserved names.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace gamebot::eventstore {

// A version inside one stream: 1, 2, 3, ... without gaps; 0 means "no events".
using StreamVersion = std::int64_t;
// A position in the `$all` stream: strictly increasing, never renumbered.
// 0 means "before the first event".
using GlobalPosition = std::int64_t;
// Fencing token of a persistent subscription's lease (backend.hpp): a
// generation number, larger for every lease taken later.
using LeaseToken = std::int64_t;
// Event and stream timestamps, microsecond precision (what PostgreSQL keeps).
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// The current time truncated to microseconds.
Timestamp now() noexcept;

// The stream of every event in commit order. It can be read and subscribed
// to, never appended to, linked into or deleted.
inline constexpr std::string_view kAllStream = "$all";

// Longest accepted stream id, snapshot source id and event type, in UTF-8 bytes.
inline constexpr std::size_t kMaxStreamIdBytes = 512;
inline constexpr std::size_t kMaxEventTypeBytes = 512;
// Largest accepted data + metadata of one event (PostgreSQL's bytea limit).
inline constexpr std::size_t kMaxEventPayloadBytes = std::size_t{1} << 30;

// Number of events a read returns when the caller does not say.
inline constexpr std::size_t kDefaultReadCount = 1000;

// "From the newest": the start of a backward read that begins at the end.
inline constexpr std::int64_t kLatest = -1;

// The optimistic-concurrency condition of a write (Elixir EventStore's
// :any_version / :no_stream / :stream_exists / integer). Implicitly
// constructible from a version number, so `append("s", 3, events)` reads as in
// Elixir; 0 is the exact form of "no stream".
class ExpectedVersion {
 public:
  enum class Kind { any, no_stream, stream_exists, exact };

  // Exact version `version` (0 = the stream must not exist). Negative numbers
  // are rejected by the store with InvalidArgument.
  constexpr ExpectedVersion(StreamVersion version) noexcept  // NOLINT(google-explicit-constructor)
      : kind_(Kind::exact), version_(version) {}

  static constexpr ExpectedVersion any() noexcept { return ExpectedVersion(Kind::any); }
  static constexpr ExpectedVersion no_stream() noexcept { return ExpectedVersion(Kind::no_stream); }
  static constexpr ExpectedVersion stream_exists() noexcept {
    return ExpectedVersion(Kind::stream_exists);
  }
  static constexpr ExpectedVersion exact(StreamVersion version) noexcept {
    return ExpectedVersion(version);
  }

  constexpr Kind kind() const noexcept { return kind_; }
  // The version of an `exact` expectation; 0 for the other kinds.
  constexpr StreamVersion version() const noexcept { return version_; }

  friend constexpr bool operator==(ExpectedVersion, ExpectedVersion) = default;

 private:
  constexpr explicit ExpectedVersion(Kind kind) noexcept : kind_(kind), version_(0) {}
  Kind kind_;
  StreamVersion version_;
};

enum class Direction { forward, backward };

// Soft: the stream is hidden from stream reads and refuses appends; its events
// stay in `$all` and in links. Hard (opt-in, StoreOptions::allow_hard_delete):
// the stream's events are gone from every read; positions stay as holes; the
// stream id can be used again from version 0.
enum class DeleteMode { soft, hard };

}  // namespace gamebot::eventstore
