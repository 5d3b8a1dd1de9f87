#pragma once

// Outcome values of writes and reads, stream information, listing,
// snapshots and stored subscriptions. Expected outcomes (a version conflict, a missing stream) are
// values the caller checks, never exceptions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// Outcome of append, link and delete.
enum class WriteStatus {
  ok,
  wrong_expected_version,  // exact version mismatch; `version` holds the actual version
  stream_exists,           // expected no_stream, the stream exists
  stream_not_found,        // expected stream_exists (or deleting), the stream does not exist
  stream_deleted,          // the stream is soft-deleted
  duplicate_event_id,      // an event id exists already (or twice in the batch; or a link
                           // names an event already in the target stream)
  cannot_append_to_all,    // the target is `$all`
  event_not_found,         // link: no event with that id
};

// Stable lower-case name ("wrong_expected_version").
std::string_view to_string(WriteStatus status) noexcept;

struct WriteResult {
  WriteStatus status = WriteStatus::ok;
  // ok: the stream version after the write. Otherwise: the stream's actual
  // version (0 when it does not exist).
  StreamVersion version = 0;
  // Append that stored at least one event: global positions of its first and
  // last event (consecutive for one batch). 0 for links, deletes, empty batches
  // and failures.
  GlobalPosition first_position = 0;
  GlobalPosition last_position = 0;
  // duplicate_event_id / event_not_found: the offending id.
  std::optional<Uuid> event_id;

  bool ok() const noexcept { return status == WriteStatus::ok; }
};
using AppendResult = WriteResult;

enum class ReadStatus {
  ok,
  stream_not_found,  // never created (or hard-deleted)
  stream_deleted,    // soft-deleted
};

std::string_view to_string(ReadStatus status) noexcept;

struct ReadResult {
  ReadStatus status = ReadStatus::ok;
  std::vector<RecordedEvent> events;  // in the order of the read's direction

  bool ok() const noexcept { return status == ReadStatus::ok; }
};

struct StreamInfo {
  std::string stream_id;
  StreamVersion version = 0;            // version of its newest event
  Timestamp created_at{};               // when the stream was created
  std::optional<Timestamp> deleted_at;  // set when soft-deleted
  std::int64_t sequence = 0;            // creation order; the cursor of list_streams

  bool deleted() const noexcept { return deleted_at.has_value(); }
};

// Streams in creation order (oldest or newest first), optionally filtered by
// an id prefix.
struct StreamListQuery {
  std::string prefix;  // only ids starting with this (default: all)
  // Cursor: streams after this sequence in the listing's order (forward:
  // created after it; backward: created before it); 0: from the start.
  std::int64_t after_sequence = 0;
  std::size_t limit = 100;               // page size (at least 1)
  Direction order = Direction::forward;  // forward: oldest first; backward: newest first
};

struct StreamListPage {
  std::vector<StreamInfo> streams;         // soft-deleted streams included (deleted() is true)
  std::optional<std::int64_t> next_after;  // cursor of the next page; empty on the last page
};

// Aggregate snapshot stored by source id (one per source, the last wins).
struct Snapshot {
  std::string source_id;  // same rules as a stream id
  StreamVersion source_version = 0;
  std::string source_type;  // type name of the snapshot data
  std::string data;
  std::string metadata;
  Timestamp created_at{};  // default (epoch): the time of recording

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// A stored persistent subscription as its backend keeps it
// (Backend::list_subscriptions).
struct StoredSubscription {
  std::string name;
  std::string stream_id;         // a stream id or `$all`
  StreamVersion checkpoint = 0;  // last acknowledged event_number (global position for `$all`)
  LeaseToken lease_token = 0;    // of the newest lease recorded with it; 0: none since stored
  bool held = false;             // a lease on it was held when it was listed
  std::string holder;            // who held it, when the backend can tell; empty otherwise

  friend bool operator==(const StoredSubscription&, const StoredSubscription&) = default;
};

// A stored subscription and how far behind it is (EventStore::list_subscriptions).
struct SubscriptionInfo {
  StoredSubscription stored;
  // When listed: head_position() for `$all`, else the stream's version (0 when
  // the stream is gone).
  StreamVersion head = 0;
  StreamVersion lag = 0;  // head - checkpoint, never below 0
};

}  // namespace gamebot::eventstore
