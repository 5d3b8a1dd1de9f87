#include "gamebot/eventstore/verify.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "gamebot/eventstore/errors.hpp"

namespace gamebot::eventstore {

std::string_view to_string(Invariant invariant) noexcept {
  switch (invariant) {
    case Invariant::positions_increasing:
      return "positions_increasing";
    case Invariant::unique_event_ids:
      return "unique_event_ids";
    case Invariant::versions_gap_free:
      return "versions_gap_free";
    case Invariant::stream_event_in_all:
      return "stream_event_in_all";
    case Invariant::all_event_in_stream:
      return "all_event_in_stream";
    case Invariant::link_target_exists:
      return "link_target_exists";
    case Invariant::stream_metadata:
      return "stream_metadata";
  }
  return "unknown";
}

std::size_t IntegrityReport::count(Invariant invariant) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(violations.begin(), violations.end(),
                    [invariant](const Violation& v) { return v.invariant == invariant; }));
}

std::string describe(const Violation& violation) {
  std::string text(to_string(violation.invariant));
  if (!violation.stream_id.empty()) text += fmt::format(" stream '{}'", violation.stream_id);
  if (violation.position != 0) text += fmt::format(" position {}", violation.position);
  if (violation.version != 0) text += fmt::format(" version {}", violation.version);
  text += ": ";
  text += violation.detail;
  return text;
}

namespace {

// An event as `$all` reported it.
struct AllEntry {
  Uuid id;
  std::string stream_id;
  StreamVersion version = 0;
  GlobalPosition position = 0;
  bool seen_in_stream = false;  // a read of its (live) stream returned it
};

// One entry of a stream read.
struct StreamEntry {
  StreamVersion number = 0;  // event_number
  bool own = false;          // the stream's own event (not a link)
};

class Walk {
 public:
  Walk(Backend& backend, const VerifyOptions& options) : backend_(backend), options_(options) {}

  IntegrityReport run() {
    read_all();
    check_own_versions();
    read_streams();
    check_all_events_belong();
    report_.head_position = backend_.head_position();
    return std::move(report_);
  }

 private:
  void add(Invariant invariant, std::string_view stream_id, GlobalPosition position,
           StreamVersion version, std::string detail) {
    if (report_.violations.size() >= options_.max_violations) {
      report_.truncated = true;
      return;
    }
    report_.violations.push_back(
        Violation{invariant, std::string(stream_id), position, version, std::move(detail)});
  }

  void read_all() {
    GlobalPosition start = 1;
    GlobalPosition last = 0;
    for (;;) {
      ReadResult page = backend_.read_all(start, options_.page_size, Direction::forward);
      for (const RecordedEvent& e : page.events) {
        ++report_.events;
        if (e.global_position <= last) {
          add(Invariant::positions_increasing, {}, e.global_position, 0,
              fmt::format("position {} follows position {} in $all", e.global_position, last));
        }
        if (e.event_number != e.global_position) {
          add(Invariant::positions_increasing, {}, e.global_position, 0,
              fmt::format("event_number {} differs from the global position", e.event_number));
        }
        last = std::max(last, e.global_position);
        auto [it, inserted] = index_.try_emplace(e.event_id, all_.size());
        if (!inserted) {
          add(Invariant::unique_event_ids, e.stream_id, e.global_position, e.stream_version,
              fmt::format("event id {} also at position {}", e.event_id.to_string(),
                          all_[it->second].position));
          continue;
        }
        all_.push_back(AllEntry{e.event_id, std::string(e.stream_id), e.stream_version,
                                e.global_position, false});
        own_versions_[all_.back().stream_id].push_back(all_.size() - 1);
      }
      if (page.events.size() < options_.page_size) break;
      // Always forward, even when a broken backend returned positions below `start`.
      start = std::max(start + 1, last + 1);
    }
  }

  // A stream's own events, as `$all` has them (in position order), must carry
  // strictly increasing versions. Gaps are checked per stream once its read
  // shows which versions are links (check_stream).
  void check_own_versions() {
    for (const auto& [stream_id, indexes] : own_versions_) {
      StreamVersion previous = 0;
      for (std::size_t i : indexes) {
        const AllEntry& e = all_[i];
        if (e.version <= previous) {
          add(Invariant::versions_gap_free, stream_id, e.position, e.version,
              fmt::format("version {} appears again (or out of order) in $all after version {}",
                          e.version, previous));
        }
        previous = std::max(previous, e.version);
      }
    }
  }

  // Versions below the stream's newest own event that are not in `$all`. A
  // stream holding links is exempt: its links fill versions, and a link whose
  // target was hard-deleted leaves a hole that looks like a missing event.
  void check_own_gaps(const std::string& id, bool has_links) {
    auto own = own_versions_.find(id);
    if (own == own_versions_.end() || has_links) return;
    std::set<StreamVersion> present;
    for (std::size_t i : own->second) present.insert(all_[i].version);
    StreamVersion expected = 1;
    for (StreamVersion version : present) {
      if (version > expected) {
        add(Invariant::versions_gap_free, id, 0, version,
            expected + 1 == version
                ? fmt::format("version {} is missing from $all", expected)
                : fmt::format("versions {}..{} are missing from $all", expected, version - 1));
      }
      expected = version + 1;
    }
  }

  void read_streams() {
    std::int64_t after = 0;
    std::int64_t last_sequence = 0;
    for (;;) {
      StreamListQuery query;
      query.after_sequence = after;
      query.limit = options_.page_size;
      StreamListPage page = backend_.list_streams(query);
      for (const StreamInfo& info : page.streams) {
        if (info.sequence <= last_sequence) {
          add(Invariant::stream_metadata, info.stream_id, 0, 0,
              fmt::format("listed with sequence {} after sequence {}", info.sequence,
                          last_sequence));
        }
        last_sequence = std::max(last_sequence, info.sequence);
        if (!listed_.emplace(info.stream_id, info.deleted()).second) {
          add(Invariant::stream_metadata, info.stream_id, 0, 0, "listed twice");
          continue;
        }
        ++report_.streams;
        if (info.deleted()) ++report_.deleted_streams;
        check_stream(info);
      }
      if (!page.next_after) break;
      if (*page.next_after <= after) {
        add(Invariant::stream_metadata, {}, 0, 0,
            fmt::format("list_streams cursor did not advance past {}", after));
        break;
      }
      after = *page.next_after;
    }
  }

  void check_stream(const StreamInfo& listed) {
    const std::string& id = listed.stream_id;
    std::optional<StreamInfo> info = backend_.stream_info(id);
    if (!info) {
      add(Invariant::stream_metadata, id, 0, 0, "listed, but stream_info finds no such stream");
    } else {
      if (info->version != listed.version) {
        add(Invariant::stream_metadata, id, 0, info->version,
            fmt::format("stream_info says version {}, the listing {}", info->version,
                        listed.version));
      }
      if (info->deleted() != listed.deleted()) {
        add(Invariant::stream_metadata, id, 0, 0,
            fmt::format("stream_info says {}, the listing {}", info->deleted() ? "deleted" : "live",
                        listed.deleted() ? "deleted" : "live"));
      }
      if (info->sequence != listed.sequence) {
        add(Invariant::stream_metadata, id, 0, 0,
            fmt::format("stream_info says sequence {}, the listing {}", info->sequence,
                        listed.sequence));
      }
    }

    auto own = own_versions_.find(id);
    const StreamVersion newest_own =
        own == own_versions_.end() ? 0 : all_[own->second.back()].version;
    if (newest_own > listed.version) {
      add(Invariant::stream_metadata, id, 0, listed.version,
          fmt::format("version is {}, but $all holds its version {}", listed.version, newest_own));
    }

    if (listed.deleted()) {
      // Soft-deleted: events stay in `$all`, stream reads refuse.
      ReadResult read = backend_.read_stream(id, 1, 1, Direction::forward);
      if (read.status != ReadStatus::stream_deleted) {
        add(Invariant::stream_metadata, id, 0, 0,
            fmt::format("listed as deleted, but a read answers {}", to_string(read.status)));
      }
      return;
    }

    std::vector<StreamEntry> entries;
    StreamVersion start = 1;
    for (;;) {
      ReadResult read = backend_.read_stream(id, start, options_.page_size, Direction::forward);
      if (read.status != ReadStatus::ok) {
        add(Invariant::stream_metadata, id, 0, 0,
            fmt::format("listed as live, but a read answers {}", to_string(read.status)));
        return;
      }
      StreamVersion last = start - 1;
      for (const RecordedEvent& e : read.events) {
        check_entry(id, e);
        entries.push_back(StreamEntry{e.event_number, e.stream_id == id});
        last = std::max(last, e.event_number);
      }
      if (read.events.size() < options_.page_size) break;
      start = std::max(start + 1, last + 1);
    }

    const bool has_links =
        std::any_of(entries.begin(), entries.end(), [](const StreamEntry& e) { return !e.own; });
    check_own_gaps(id, has_links);
    StreamVersion previous = 0;
    for (const StreamEntry& entry : entries) {
      if (entry.number <= previous) {
        add(Invariant::versions_gap_free, id, 0, entry.number,
            fmt::format("event number {} follows {} in a forward read", entry.number, previous));
      } else if (!has_links && entry.number != previous + 1) {
        add(Invariant::versions_gap_free, id, 0, entry.number,
            fmt::format("a forward read jumps from version {} to {}", previous, entry.number));
      }
      previous = std::max(previous, entry.number);
    }
    if (entries.empty()) {
      add(Invariant::stream_metadata, id, 0, 0, "a live stream without any event or link");
    } else if (has_links ? previous > listed.version : previous != listed.version) {
      add(Invariant::stream_metadata, id, 0, listed.version,
          fmt::format("version is {}, but its newest entry is {}", listed.version, previous));
    }
  }

  void check_entry(const std::string& id, const RecordedEvent& e) {
    const bool own = e.stream_id == id;
    if (!own) ++report_.links;
    const Invariant invariant =
        own ? Invariant::stream_event_in_all : Invariant::link_target_exists;
    auto found = index_.find(e.event_id);
    if (own && e.event_number != e.stream_version) {
      add(Invariant::versions_gap_free, id, e.global_position, e.event_number,
          fmt::format("event number {} differs from the event's version {}", e.event_number,
                      e.stream_version));
    }
    if (found == index_.end()) {
      add(invariant, id, e.global_position, e.event_number,
          fmt::format("{} {} ({} version {}) is not in $all", own ? "event" : "linked event",
                      e.event_id.to_string(), e.stream_id, e.stream_version));
      return;
    }
    AllEntry& entry = all_[found->second];
    if (entry.stream_id != e.stream_id || entry.version != e.stream_version ||
        entry.position != e.global_position) {
      add(invariant, id, e.global_position, e.event_number,
          fmt::format("{} {} reads as {} version {} position {}, but $all has {} version {} "
                      "position {}",
                      own ? "event" : "linked event", e.event_id.to_string(), e.stream_id,
                      e.stream_version, e.global_position, entry.stream_id, entry.version,
                      entry.position));
      return;
    }
    if (own) entry.seen_in_stream = true;
  }

  void check_all_events_belong() {
    for (const AllEntry& e : all_) {
      auto stream = listed_.find(e.stream_id);
      if (stream == listed_.end()) {
        add(Invariant::all_event_in_stream, e.stream_id, e.position, e.version,
            fmt::format("event {} belongs to a stream that does not exist", e.id.to_string()));
      } else if (!stream->second && !e.seen_in_stream) {
        add(Invariant::all_event_in_stream, e.stream_id, e.position, e.version,
            fmt::format("event {} is not returned by a read of its stream", e.id.to_string()));
      }
    }
  }

  Backend& backend_;
  const VerifyOptions& options_;
  IntegrityReport report_;
  std::vector<AllEntry> all_;                    // `$all` in read order
  std::unordered_map<Uuid, std::size_t> index_;  // event id -> index into all_
  std::map<std::string, std::vector<std::size_t>, std::less<>> own_versions_;  // stream -> all_
  std::map<std::string, bool, std::less<>> listed_;  // listed stream -> soft-deleted
};

}  // namespace

IntegrityReport verify(Backend& backend, VerifyOptions options) {
  if (options.page_size == 0) throw InvalidArgument("verify: page_size must be at least 1");
  return Walk(backend, options).run();
}

IntegrityReport verify(EventStore& store, VerifyOptions options) {
  return verify(store.backend(), options);
}

}  // namespace gamebot::eventstore
