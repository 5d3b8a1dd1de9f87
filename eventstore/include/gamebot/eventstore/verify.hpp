#pragma once

// The store integrity check: walks a whole store through the public Backend
// API (`$all` forward in pages, every listed stream forward in pages, stream
// info) and reports every broken invariant as a value. Works the same on every
// backend, so a memory, SQLite or PostgreSQL store is checked by one code path
// (and the CLI's `gamebot-store verify` is this function).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/eventstore/backend.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// The invariants verify() checks.
enum class Invariant {
  // `$all` read forward: global positions strictly increasing, and each
  // event's event_number equal to its global position.
  positions_increasing,
  // No event id appears twice in `$all`.
  unique_event_ids,
  // A stream's own events, as found in `$all`, have strictly increasing
  // versions, and (in a live stream without links) versions 1, 2, ... n
  // without gaps; a read of a live stream returns its own events with
  // event_number == stream_version, in strictly increasing order, and (when it
  // holds no links) without gaps. Streams holding links and soft-deleted
  // streams (whose links cannot be read) get the ordering checks only: a link
  // to a hard-deleted event leaves a hole that the API cannot tell from a
  // missing event.
  versions_gap_free,
  // Every event a stream read returns as the stream's own is in `$all` with
  // the same id, stream, version and position.
  stream_event_in_all,
  // Every `$all` event belongs to a stream that exists (live or soft-deleted),
  // and a live stream's read returns it.
  all_event_in_stream,
  // A link entry of a stream refers to an event that is in `$all`, with the
  // same stream, version and position.
  link_target_exists,
  // Stream metadata agrees with itself and the events: list_streams pages
  // ordered and without repeats, stream_info present and equal to the listing,
  // the version equal to the newest entry, read status matching the deleted
  // flag, no live stream without entries.
  stream_metadata,
};

// Stable lower-case name ("versions_gap_free").
std::string_view to_string(Invariant invariant) noexcept;

// One broken invariant at one place.
struct Violation {
  Invariant invariant = Invariant::positions_increasing;
  std::string stream_id;        // the stream concerned; empty for `$all`-only findings
  GlobalPosition position = 0;  // the global position concerned; 0 when none
  StreamVersion version = 0;    // the stream version / event number concerned; 0 when none
  std::string detail;           // one line saying what was found and what was expected
};

struct VerifyOptions {
  std::size_t page_size = 1000;       // events (and streams) per backend read; at least 1
  std::size_t max_violations = 1000;  // stop collecting (truncated = true) past this many
};

// What verify() found. Counts describe what was walked.
struct IntegrityReport {
  std::vector<Violation> violations;  // in the order found
  bool truncated = false;             // more violations exist than were collected
  std::uint64_t events = 0;           // events in `$all`
  std::uint64_t streams = 0;          // streams listed (live and soft-deleted)
  std::uint64_t deleted_streams = 0;  // of which soft-deleted
  std::uint64_t links = 0;            // link entries read from streams
  GlobalPosition head_position = 0;   // head_position() after the walk

  bool ok() const noexcept { return violations.empty() && !truncated; }
  // How many violations of `invariant` were collected.
  std::size_t count(Invariant invariant) const noexcept;
};

// "invariant stream 'id' position p version v: detail" (the parts that apply).
std::string describe(const Violation& violation);

// Checks `backend`'s whole store. Meant for a quiescent store: events
// committed during the walk may be reported as missing from the side read
// first. Memory: one entry per event (id, stream, version, position) while it
// runs. Thread safety: as the backend's reads (any thread). Errors: broken
// invariants are values in the report; backend faults (connectivity,
// timeout, ...) propagate as gamebot::Error; page_size 0 throws
// InvalidArgument.
IntegrityReport verify(Backend& backend, VerifyOptions options = {});
// verify(store.backend(), options).
IntegrityReport verify(EventStore& store, VerifyOptions options = {});

}  // namespace gamebot::eventstore
