#pragma once

// Marked resources: the one place that decides what the harness may remove. Everything the
// harness creates on a server or a disk (a database, a run directory, an ephemeral server's
// directory) carries a RunMarker; this module writes it, lists what carries one, removes a
// resource only while its marker says the caller owns it, and reaps resources whose owner is
// gone. Rules:
//   - Nothing without a marker is ever removed, whatever its name (an unmarked clone too).
//   - A kept resource (--keep; RunMarker::kept) is never an orphan: only an explicit removal of
//     kept resources (`gamebot-store test-dbs reap --kept`) takes it.
//   - A marker is written as soon as the resource exists (a database: the statement right after
//     CREATE DATABASE, which cannot share a transaction with it; a directory: before its
//     contents) and removed last, with the resource.
//   - Liveness before age: see is_orphan(). On a PostgreSQL server, a run holds a ServerLease
//     (a session advisory lock) for its whole life and says so in its markers, so a run on
//     another host is alive exactly while its lease is held.
//   - A database shared between runs (RunMarker::origin set: a pooled run database) is used only
//     under its claim (see claims below). Unclaimed and cloned from the template that still
//     exists (same oid) it is kept across runs like the template, never an orphan; once that
//     template is gone or rebuilt it is stale and reaped, under its claim (never while in use).
//   - Removal is safe against concurrent removers: the resource is locked, its marker rechecked,
//     and an invalid database (a DROP DATABASE that died half-way) is dropped on a fresh
//     connection, which also replaces a connection the server closed.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"

namespace gamebot::harness::marked {

// The marker file inside a marked directory.
inline constexpr std::string_view kMarkerFileName = "gamebot-run-marker";
// LIKE pattern of every database the harness creates (test_database_name(), its clones,
// templates): the listing looks no further.
inline constexpr std::string_view kDatabaseLikePattern = "gamebot\\_test\\_%";
// RunMarker::resource of a verified template: shared by every run, never reaped.
inline constexpr std::string_view kTemplateResource = "template";
// RunMarker::resource of a pooled run database: a clone of a template (RunMarker::origin) that
// one process after another uses under its claim; kept across runs while its template is.
inline constexpr std::string_view kPooledResource = "pooled";
// RunMarker::resource of a ready clone: a clone of a template (RunMarker::origin) prepared for
// database isolation and not used; a process takes it under its claim and re-marks it as its own
// clone before use, so a clone in use is always some run's, reaped when that run is gone.
inline constexpr std::string_view kReadyResource = "ready";
// RunMarker::resource of a spent clone: a clone of a template (RunMarker::origin) that a test has
// used. Never handed out again (it is of no resource a process claims for use), always stale():
// whoever finds it unclaimed may drop it, so a process re-marks its used clones spent at exit and
// leaves the drop to a later process's background thread (start_dropping_spent()) or the reaper.
inline constexpr std::string_view kSpentResource = "spent";

// One resource found by list(): a database name or a directory path.
struct MarkedResource {
  std::string name;                 // database name, or directory path
  std::optional<RunMarker> marker;  // nullopt: unmarked (never touched)
  std::string problem;              // why a marker could not be read (then never touched)
  std::uint32_t oid = 0;            // a database's oid
  bool valid = true;                // false: a database a DROP DATABASE left invalid
};

// Decides whether the caller owns a marked resource (e.g. "its run id is mine").
using Owner = std::function<bool(const RunMarker&)>;

// An owner that accepts exactly `run_id`'s markers.
Owner owned_by_run(std::string run_id);

// ---- server lease --------------------------------------------------------------------------

// A session advisory lock on its own connection, keyed by the owner's identity (run id, host,
// pid, start time), held until destroyed or until the connection ends (process death). Markers
// written with `marker.server_lease = true` promise one is held. Move-only, not thread-safe.
class ServerLease {
 public:
  // Connects to `server` with `connect` and takes the lock. Throws gamebot::Error as
  // repo::connect does.
  static ServerLease acquire(const repo::DatabaseUrl& server, const RunMarker& owner,
                             const repo::ConnectOptions& connect = {});
  ServerLease(ServerLease&&) noexcept;
  ServerLease& operator=(ServerLease&&) noexcept;
  ~ServerLease();

 private:
  explicit ServerLease(std::unique_ptr<repo::Connection> connection);
  std::unique_ptr<repo::Connection> connection_;
};

// Whether the lease of `owner` is held on the server of `connection` by any session (advisory
// locks are per database; pg_locks shows them all). Thread-compatible.
bool lease_held(repo::Connection& connection, const RunMarker& owner);

// Whether the owner of `marker`, a resource on the server of `connection`, is gone:
// is_orphan() with the lease asked for when the marker promises one.
bool owner_gone(repo::Connection& connection, const RunMarker& marker, std::chrono::seconds grace);

// ---- databases -----------------------------------------------------------------------------

// COMMENT ON DATABASE `database` IS the marker. Call it right after CREATE DATABASE.
void mark(repo::Connection& connection, std::string_view database, const RunMarker& marker);

// The marker of `database`; nullopt when it does not exist, is unmarked or the comment is not
// a marker.
std::optional<RunMarker> marker_of(repo::Connection& connection, std::string_view database);

// A database's marker and oid, read together.
struct MarkedDatabase {
  std::optional<RunMarker> marker;  // nullopt: unmarked, or the comment is not a marker
  std::uint32_t oid = 0;
};

// `database`'s marker and oid in one look-up; nullopt when it does not exist.
std::optional<MarkedDatabase> look_up(repo::Connection& connection, std::string_view database);

// Marks `database` kept (RunMarker::kept) if its marker satisfies `owner`: no reaper removes it
// from then on. True if it is now kept.
bool keep(repo::Connection& connection, std::string_view database, const Owner& owner);

// Every database named kDatabaseLikePattern, by name.
std::vector<MarkedResource> list(repo::Connection& connection);

// Drops `database` if its marker (read under a lock that removers take in turn) satisfies
// `owner`. Returns true if it is gone (dropped by this call or by a concurrent remover), false if
// it is not ours (unmarked, another owner). `connection` (to `server`) is replaced by a fresh one
// when the server closed it. Throws gamebot::Error when the server refuses the drop.
bool drop_if_owned(const repo::DatabaseUrl& server, std::unique_ptr<repo::Connection>& connection,
                   std::string_view database, const Owner& owner);

// What reap_orphans() does with spent clones (kSpentResource): drop them like any stale shared
// database, or leave them to start_dropping_spent() (a harness process's reap runs on its critical
// path, and a DROP DATABASE costs a checkpoint).
enum class SpentClones { drop, leave };

// Drops every marked database whose owner is gone (owner_gone(); templates never) and every stale
// unclaimed shared database (drop_if_stale(); a fresh one never, claimed or not; a spent clone
// only with SpentClones::drop), and returns their names. A resource that cannot be removed is
// logged and skipped.
std::vector<std::string> reap_orphans(const repo::DatabaseUrl& server,
                                      std::unique_ptr<repo::Connection>& connection,
                                      std::chrono::seconds grace,
                                      SpentClones spent = SpentClones::drop);
// The same over `listed`, a list() the caller read moments ago on that server: a shared database
// whose template `listed` shows current is passed over without a round trip of its own.
std::vector<std::string> reap_orphans(const repo::DatabaseUrl& server,
                                      std::unique_ptr<repo::Connection>& connection,
                                      std::chrono::seconds grace, SpentClones spent,
                                      std::span<const MarkedResource> listed);

// ---- claims: databases shared between runs ------------------------------------------------
// A claim is a session advisory lock keyed by the database's name: held by the session that took
// it until release_claim() or until the session ends (the server frees a SIGKILLed process's
// claim). An advisory lock excludes only sessions connected to the same database, so try_claim()
// also refuses a claim that a session connected to another database holds (runs' admin URLs may
// name different databases); claimed() sees every session's. A shared database is created under its
// claim (try_claim() of a free name, CREATE DATABASE, mark()), so nobody takes it before its marker
// is written.

// Takes the claim on `database` for `session` without waiting. True if taken (or already held
// by `session`: claims nest, each take needs its release).
bool try_claim(repo::Connection& session, std::string_view database);

// Releases one take of `session`'s claim on `database`.
void release_claim(repo::Connection& session, std::string_view database);

// Whether any session on the server holds the claim on `database`.
bool claimed(repo::Connection& connection, std::string_view database);

// The oid of `database`; nullopt when it does not exist.
std::optional<std::uint32_t> database_oid(repo::Connection& connection, std::string_view database);

// Whether a shared database's marker is stale: a spent clone, or its origin template is gone, no
// longer carries a template marker, or was rebuilt (another oid) since the clone was made.
bool stale(repo::Connection& connection, const RunMarker& marker);
// The same judged by `listed` (a list() of the server): the origin is looked for there.
bool stale(std::span<const MarkedResource> listed, const RunMarker& marker);

// The databases marked as `resource` cloned from `origin` (a template database) with oid
// `origin_oid`, by name; claimed or not.
std::vector<std::string> shared_clones(repo::Connection& connection, std::string_view resource,
                                       std::string_view origin, std::uint32_t origin_oid);

// Claims the first of shared_clones() that `session` can claim and whose marker, read again
// under the claim, is still such a clone; returns its name, nullopt when none is free.
// `preferred`, when it is one of them, is tried first (a connection to it may be open already).
std::optional<std::string> claim_free(repo::Connection& session, std::string_view resource,
                                      std::string_view origin, std::uint32_t origin_oid,
                                      std::string_view preferred = {});
// The same with the candidates taken from `listed`, a list() the caller read moments ago (each is
// still checked under its claim).
std::optional<std::string> claim_free(repo::Connection& session, std::string_view resource,
                                      std::string_view origin, std::uint32_t origin_oid,
                                      std::string_view preferred,
                                      std::span<const MarkedResource> listed);

// An owner that accepts a shared database's marker of `resource` cloned from `origin` (a drop
// by the process that holds its claim).
Owner shared_clone_of(std::string resource, std::string origin);

// Drops the shared `database` if, under its claim (taken here on `connection`, so never while
// another session holds it), its marker is still `listed` and stale(). True if dropped.
bool drop_if_stale(const repo::DatabaseUrl& server, std::unique_ptr<repo::Connection>& connection,
                   std::string_view database, const RunMarker& listed);

// Re-marks `database` as `spent` (a kSpentResource marker) if, under its claim (taken here on
// `connection`, so never while another session holds it), its marker satisfies `owner`. True if
// re-marked. A COMMENT, not a drop: cheap enough for a process's exit path.
bool mark_spent(repo::Connection& connection, std::string_view database, const Owner& owner,
                const RunMarker& spent);

// Starts dropping one unclaimed spent clone, on `connection` (to the server's maintenance
// database, a PostgreSQL one), and does not wait for it: under its claim and the removers' lock,
// its marker read again, the DROP DATABASE is sent and `connection` closed (reset). The server
// finishes the statement (a backend reads its client's socket only between statements) and then
// ends the session, freeing the claim and the lock; a drop that dies half-way leaves an invalid
// database that the next drop of it completes. Returns the name, or nullopt when no spent clone
// was free (then `connection` is kept).
std::optional<std::string> start_dropping_spent(std::unique_ptr<repo::Connection>& connection);

// ---- directories (SQLite run directories, ephemeral servers) -------------------------------

// Writes `directory`/kMarkerFileName. Call it before putting anything else in the directory.
void mark(const std::filesystem::path& directory, const RunMarker& marker);

// The marker of `directory`; nullopt when it has none. Throws gamebot::Error(integrity) for a
// malformed marker.
std::optional<RunMarker> marker_of(const std::filesystem::path& directory);

// Marks `directory` kept (RunMarker::kept) if its marker satisfies `owner`. True if now kept.
bool keep(const std::filesystem::path& directory, const Owner& owner);

// Every directory in `base` whose name starts with `prefix`, by path.
std::vector<MarkedResource> list(const std::filesystem::path& base, std::string_view prefix);

// Removes `directory` if its marker satisfies `owner`: its contents, then the marker, then the
// directory. True if removed.
bool drop_if_owned(const std::filesystem::path& directory, const Owner& owner);

// Removes every directory in `base` named `prefix`* whose marker is of `resource` and whose
// owner is gone (is_orphan() on this host); returns their paths.
std::vector<std::filesystem::path> reap_orphans(const std::filesystem::path& base,
                                                std::string_view prefix, std::string_view resource,
                                                std::chrono::seconds grace);

}  // namespace gamebot::harness::marked
