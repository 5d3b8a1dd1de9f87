#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace gamebot::harness {

// Default age past which any marker counts as an orphan, whatever its host.
inline constexpr std::chrono::hours kDefaultOrphanGrace{24};

// The ownership record the harness attaches to everything it creates (a
// database, a directory, a server), written BEFORE the resource is created and
// removed LAST, so a resource without a live owner can always be found and
// reaped, and a resource without a marker is never touched.
struct RunMarker {
  std::string run_id;  // RunId::str() of the owning run
  // What is marked: "ephemeral-postgres", "database" (a run database), "clone", "template", or
  // a database shared between runs that a run claims (marked_resources.hpp, claims): "pooled"
  // (a run database reused by one process after another), "ready" (a clone prepared for database
  // isolation that its process did not use, left for the next process to take).
  std::string resource;
  std::string host;             // owner host name
  long pid = 0;                 // owner pid on that host
  std::uint64_t pid_start = 0;  // owner start time in clock ticks since boot; 0: unknown
  std::string boot_id;          // owner host's boot id; empty: unknown
  std::chrono::system_clock::time_point started_at{};  // when the owner created the marker
  std::string harness_version;                         // harness_version() of the owner
  // The owner holds a marked::ServerLease on the server this marker lives on for its whole
  // life, so its liveness is exact from any host. Markers of files never have one.
  bool server_lease = false;
  // Kept for inspection (--keep): its owner's end does not make it an orphan, so no reaper
  // removes it; only an explicit `gamebot-store test-dbs reap --kept` does.
  bool kept = false;
  // A template database: the fingerprint of the schema check (phase 4) a clone of it passed,
  // so later runs with the same fingerprint trust its clones without checking them again;
  // empty: not checked yet.
  std::string verified;
  // A database cloned from a template to be shared between runs ("pooled"): the template's name
  // and its oid when cloned. A rebuilt or dropped template has another oid or none, and its
  // clones are stale; empty / 0: not a shared clone.
  std::string origin;
  std::uint32_t origin_oid = 0;

  // A marker owned by this process, started now. Thread-safe.
  static RunMarker for_this_process(std::string run_id, std::string resource);

  // `key=value` lines after a header line; values escaped so they fit on one line.
  std::string serialize() const;
  // Parses serialize()'s output; unknown keys are ignored (newer versions may
  // add some). Throws gamebot::Error(integrity) for anything malformed.
  static RunMarker parse(std::string_view text);

  friend bool operator==(const RunMarker&, const RunMarker&) = default;
};

// This machine's host name (gethostname). Thread-safe.
std::string this_host_name();

// Whether the marker's owner is gone. Liveness is checked before age:
//   - a kept marker: never (it outlives its owner on purpose).
//   - `lease_held` (the owner's server lease, asked by the caller when the marker has one)
//     true: alive.
//   - this host: gone exactly when the host rebooted since (boot id differs), the pid does not
//     exist (kill(pid, 0) fails with ESRCH), is a zombie, or belongs to a process started at
//     another time (pid reuse). Age never matters: a live soak or --keep session is kept.
//   - another host, with a lease the caller asked for (`lease_held` false): gone at once.
//   - another host, liveness unknown: gone once the marker is older than `grace`.
// Thread-safe.
bool is_orphan(const RunMarker& marker, std::chrono::system_clock::time_point now,
               std::chrono::seconds grace, std::string_view this_host,
               std::optional<bool> lease_held = std::nullopt);

// Writes the marker file atomically (temporary file + rename; no fsync: a
// marker guards against dead processes, not power loss). Throws
// gamebot::Error(provisioning) naming the path on failure.
void write_marker_file(const std::filesystem::path& path, const RunMarker& marker);

// Reads a marker file; nullopt when the file does not exist. Throws
// gamebot::Error(integrity) for a malformed file, (provisioning) when unreadable.
std::optional<RunMarker> read_marker_file(const std::filesystem::path& path);

}  // namespace gamebot::harness
