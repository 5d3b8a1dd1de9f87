#include "gamebot/harness/marked_resources.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <utility>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "log.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness::marked {

namespace {

// The first key of the two-key advisory locks this module takes (pg_locks shows it as classid,
// the second key as objid, objsubid 2): one class for run leases, one for removals.
constexpr std::int32_t kLeaseLockClass = 0x67626c65;  // "gble"
constexpr std::int32_t kDropLockClass = 0x67626472;   // "gbdr"
constexpr std::int32_t kClaimLockClass = 0x6762636c;  // "gbcl"

// FNV-1a, 32 bits: stable across builds, hosts and versions (the key must match between runs).
std::int32_t key_of(std::string_view text) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : text) hash = (hash ^ c) * 16777619u;
  return static_cast<std::int32_t>(hash);
}

std::int32_t lease_key(const RunMarker& owner) {
  return key_of(
      fmt::format("{}\n{}\n{}\n{}", owner.run_id, owner.host, owner.pid, owner.pid_start));
}

// pg_locks shows a two-key advisory lock's keys as oids: their bits read unsigned.
std::int64_t as_oid(std::int32_t key) {
  return static_cast<std::int64_t>(static_cast<std::uint32_t>(key));
}

// Whether any session holds the two-key advisory lock (lock_class, key), in any database.
bool two_key_lock_held(repo::Connection& connection, std::int32_t lock_class, std::int32_t key) {
  return connection
             .query_value<std::int64_t>(
                 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                 "objsubid = 2 AND classid::bigint = $1 AND objid::bigint = $2",
                 as_oid(lock_class), as_oid(key))
             .value_or(0) > 0;
}

std::optional<RunMarker> parse_comment(std::string_view comment, std::string* problem) {
  if (comment.empty()) return std::nullopt;
  try {
    return RunMarker::parse(comment);
  } catch (const Error& e) {
    if (problem != nullptr) *problem = e.message();
    return std::nullopt;
  }
}

// What pg_database says of a database: absent, valid, or invalid (a DROP DATABASE that did not
// finish; PostgreSQL 15.4+ marks it datconnlimit -2 and allows nothing but DROP DATABASE on it).
enum class DatabaseState { absent, valid, invalid };

// A database's state and marker, read in one statement (one snapshot: a concurrent DROP that
// commits in between cannot show an invalid database without its marker).
struct Found {
  DatabaseState state = DatabaseState::absent;
  std::optional<RunMarker> marker;
  std::uint32_t oid = 0;
};

Found find(repo::Connection& connection, std::string_view database) {
  auto rows = connection.query(
      "SELECT datconnlimit::bigint, coalesce(shobj_description(oid, 'pg_database'), ''), "
      "oid::bigint FROM pg_database WHERE datname = $1",
      database);
  Found found;
  if (!rows.next()) return found;
  found.state =
      rows.row().get<std::int64_t>(0) == -2 ? DatabaseState::invalid : DatabaseState::valid;
  found.marker = parse_comment(rows.row().get<std::string>(1), nullptr);
  found.oid = static_cast<std::uint32_t>(rows.row().get<std::int64_t>(2));
  return found;
}

std::int64_t server_version(repo::Connection& connection) {
  return connection
      .query_value<std::int64_t>("SELECT current_setting('server_version_num')::bigint")
      .value_or(0);
}

// Ends the database's sessions and drops it. From PostgreSQL 13, DROP DATABASE ... WITH (FORCE)
// does both under the database's lock, so two removers take turns and the second finds it gone;
// ALTER DATABASE takes no such lock, and two at once fail with "tuple concurrently updated".
// Older servers need the ALTER (forbid new connections) and the terminate. An invalid database
// takes nothing but the drop (ALTER DATABASE on it is FATAL: the server closes the connection).
// Returns the DROP DATABASE statement, having done what must precede it.
std::string prepare_force_drop(repo::Connection& connection, std::string_view database,
                               DatabaseState state) {
  const std::string quoted = repo::quote_identifier(database);
  const bool force = server_version(connection) >= 130000;
  if (state == DatabaseState::valid && !force) {
    connection.execute("ALTER DATABASE " + quoted + " ALLOW_CONNECTIONS false");
    connection.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
        "pg_backend_pid()",
        database);
  }
  return "DROP DATABASE IF EXISTS " + quoted + (force ? " WITH (FORCE)" : "");
}

void force_drop(repo::Connection& connection, std::string_view database, DatabaseState state) {
  connection.execute(prepare_force_drop(connection, database, state));
}

}  // namespace

Owner owned_by_run(std::string run_id) {
  return [run_id = std::move(run_id)](const RunMarker& marker) { return marker.run_id == run_id; };
}

// ---- server lease ----------------------------------------------------------------------------

ServerLease ServerLease::acquire(const repo::DatabaseUrl& server, const RunMarker& owner,
                                 const repo::ConnectOptions& connect) {
  auto connection = repo::connect(server, connect);
  connection->query("SELECT pg_advisory_lock($1::int, $2::int)", kLeaseLockClass, lease_key(owner));
  return ServerLease(std::move(connection));
}

ServerLease::ServerLease(std::unique_ptr<repo::Connection> connection)
    : connection_(std::move(connection)) {}
ServerLease::ServerLease(ServerLease&&) noexcept = default;
ServerLease& ServerLease::operator=(ServerLease&&) noexcept = default;
// Closing the session releases the lock.
ServerLease::~ServerLease() = default;

bool lease_held(repo::Connection& connection, const RunMarker& owner) {
  return two_key_lock_held(connection, kLeaseLockClass, lease_key(owner));
}

bool owner_gone(repo::Connection& connection, const RunMarker& marker, std::chrono::seconds grace) {
  std::optional<bool> lease;
  if (marker.server_lease) lease = lease_held(connection, marker);
  return is_orphan(marker, std::chrono::system_clock::now(), grace, this_host_name(), lease);
}

// ---- databases -------------------------------------------------------------------------------

void mark(repo::Connection& connection, std::string_view database, const RunMarker& marker) {
  connection.execute("COMMENT ON DATABASE " + repo::quote_identifier(database) + " IS " +
                     repo::embed_sql_name(marker.serialize(), repo::SqlToken::literal));
}

std::optional<MarkedDatabase> look_up(repo::Connection& connection, std::string_view database) {
  Found found = find(connection, database);
  if (found.state == DatabaseState::absent) return std::nullopt;
  return MarkedDatabase{std::move(found.marker), found.oid};
}

std::optional<RunMarker> marker_of(repo::Connection& connection, std::string_view database) {
  auto comment = connection.query_value<std::optional<std::string>>(
      "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", database);
  if (!comment || !*comment) return std::nullopt;
  return parse_comment(**comment, nullptr);
}

bool keep(repo::Connection& connection, std::string_view database, const Owner& owner) {
  std::optional<RunMarker> marker = marker_of(connection, database);
  if (!marker || !owner(*marker)) return false;
  marker->kept = true;
  mark(connection, database, *marker);
  return true;
}

std::vector<MarkedResource> list(repo::Connection& connection) {
  auto rows = connection.query(
      "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), ''), oid::bigint, "
      "datconnlimit::bigint FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
      kDatabaseLikePattern);
  std::vector<MarkedResource> found;
  while (rows.next()) {
    MarkedResource resource;
    resource.name = rows.row().get<std::string>(0);
    resource.marker = parse_comment(rows.row().get<std::string>(1), &resource.problem);
    resource.oid = static_cast<std::uint32_t>(rows.row().get<std::int64_t>(2));
    resource.valid = rows.row().get<std::int64_t>(3) != -2;
    found.push_back(std::move(resource));
  }
  return found;
}

bool drop_if_owned(const repo::DatabaseUrl& server, std::unique_ptr<repo::Connection>& connection,
                   std::string_view database, const Owner& owner) {
  if (!connection || !connection->is_alive()) connection = repo::connect(server);
  // Two removers of one database (two runs reaping the same orphan) take turns; the second
  // finds it gone or sees its marker anew. Only removers connected to the same database (the
  // lock's scope) exclude each other: the recovery below covers the others.
  const std::int32_t key = key_of(database);
  connection->query("SELECT pg_advisory_lock($1::int, $2::int)", kDropLockClass, key);
  try {
    const Found found = find(*connection, database);
    if (found.state == DatabaseState::absent || !found.marker || !owner(*found.marker)) {
      connection->query("SELECT pg_advisory_unlock($1::int, $2::int)", kDropLockClass, key);
      if (found.state != DatabaseState::absent) {
        detail::log().warn("not dropping database {}: it does not carry its owner's marker",
                           database);
      }
      return found.state == DatabaseState::absent;
    }
    force_drop(*connection, database, found.state);
    connection->query("SELECT pg_advisory_unlock($1::int, $2::int)", kDropLockClass, key);
    return true;
  } catch (const Error& first) {
    // Another remover dropped it meanwhile, or left it invalid; the server may have closed the
    // connection (the session's lock went with it). A fresh connection finds out.
    detail::log().info("dropping database {} failed ({}); checking on a fresh connection", database,
                       first.message());
    connection = repo::connect(server);
    const Found found = find(*connection, database);
    if (found.state == DatabaseState::absent) return true;
    if (found.marker && owner(*found.marker)) {
      force_drop(*connection, database, found.state);
      return true;
    }
    throw;
  }
}

std::vector<std::string> reap_orphans(const repo::DatabaseUrl& server,
                                      std::unique_ptr<repo::Connection>& connection,
                                      std::chrono::seconds grace, SpentClones spent) {
  if (!connection || !connection->is_alive()) connection = repo::connect(server);
  const std::vector<MarkedResource> listed = list(*connection);
  return reap_orphans(server, connection, grace, spent, listed);
}

std::vector<std::string> reap_orphans(const repo::DatabaseUrl& server,
                                      std::unique_ptr<repo::Connection>& connection,
                                      std::chrono::seconds grace, SpentClones spent,
                                      std::span<const MarkedResource> listed) {
  std::vector<std::string> reaped;
  for (const MarkedResource& found : listed) {
    if (!found.marker || found.marker->resource == kTemplateResource) continue;
    if (spent == SpentClones::leave && found.marker->resource == kSpentResource) continue;
    try {
      if (!connection || !connection->is_alive()) connection = repo::connect(server);
      if (!found.marker->origin.empty()) {
        // Fresh by the listing: a marker once stale stays stale (see drop_if_stale()), and one
        // that was stale when listed is checked again there.
        if (found.marker->kept || !stale(listed, *found.marker)) continue;
        if (drop_if_stale(server, connection, found.name, *found.marker)) {
          detail::log().info("reaped stale shared database {} (its template {} is gone or rebuilt)",
                             found.name, found.marker->origin);
          reaped.push_back(found.name);
        }
        continue;
      }
      if (!owner_gone(*connection, *found.marker, grace)) continue;
      // Exactly the marker listed: a run that took the name over since is not reaped.
      const std::string listed = found.marker->serialize();
      const Owner same_orphan = [&listed](const RunMarker& now) {
        return now.serialize() == listed;
      };
      if (drop_if_owned(server, connection, found.name, same_orphan)) {
        detail::log().info("reaped orphaned database {} (owner pid {} on {} is gone)", found.name,
                           found.marker->pid, found.marker->host);
        reaped.push_back(found.name);
      }
    } catch (const std::exception& e) {
      detail::log().warn("not reaping {}: {}", found.name, e.what());
    }
  }
  return reaped;
}

// ---- claims ----------------------------------------------------------------------------------

bool try_claim(repo::Connection& session, std::string_view database) {
  // The lock excludes only sessions connected to the same database, and a run's admin connection
  // is to whatever database its URL names: a claim another session holds from another database
  // counts too. Two sessions that lock at once both see the other and both give up: never both in.
  // One round trip: pg_locks is read after the lock is taken (the lateral subquery needs the
  // attempt's row, and pg_locks shows the lock table as it is, not as of a snapshot).
  const std::int32_t key = key_of(database);
  auto rows = session.query(
      "SELECT attempt.got, coalesce(others.n, 0) FROM (SELECT pg_try_advisory_lock($1::int, "
      "$2::int) AS got OFFSET 0) AS attempt LEFT JOIN LATERAL (SELECT count(*) AS n FROM pg_locks "
      "WHERE attempt.got AND locktype = 'advisory' AND granted AND objsubid = 2 AND "
      "classid::bigint = $3 AND objid::bigint = $4 AND pid <> pg_backend_pid()) AS others ON true",
      kClaimLockClass, key, as_oid(kClaimLockClass), as_oid(key));
  if (!rows.next() || !rows.row().get<bool>(0)) return false;
  if (rows.row().get<std::int64_t>(1) == 0) return true;
  release_claim(session, database);
  return false;
}

void release_claim(repo::Connection& session, std::string_view database) {
  session.query("SELECT pg_advisory_unlock($1::int, $2::int)", kClaimLockClass, key_of(database));
}

bool claimed(repo::Connection& connection, std::string_view database) {
  return two_key_lock_held(connection, kClaimLockClass, key_of(database));
}

std::optional<std::uint32_t> database_oid(repo::Connection& connection, std::string_view database) {
  auto oid = connection.query_value<std::int64_t>(
      "SELECT oid::bigint FROM pg_database WHERE datname = $1", database);
  if (!oid) return std::nullopt;
  return static_cast<std::uint32_t>(*oid);
}

namespace {

// The rule of stale(), given what the server shows of the origin.
bool stale_given(const RunMarker& marker, DatabaseState origin_state,
                 const std::optional<RunMarker>& origin_marker, std::uint32_t origin_oid) {
  if (marker.resource == kSpentResource) return true;
  if (origin_state != DatabaseState::valid || !origin_marker ||
      origin_marker->resource != kTemplateResource)
    return true;
  return origin_oid != marker.origin_oid;
}

}  // namespace

bool stale(repo::Connection& connection, const RunMarker& marker) {
  if (marker.resource == kSpentResource) return true;
  const Found origin = find(connection, marker.origin);
  return stale_given(marker, origin.state, origin.marker, origin.oid);
}

bool stale(std::span<const MarkedResource> listed, const RunMarker& marker) {
  const auto origin = std::find_if(listed.begin(), listed.end(), [&](const MarkedResource& r) {
    return r.name == marker.origin;
  });
  if (origin == listed.end()) return stale_given(marker, DatabaseState::absent, std::nullopt, 0);
  return stale_given(marker, origin->valid ? DatabaseState::valid : DatabaseState::invalid,
                     origin->marker, origin->oid);
}

namespace {

std::vector<std::string> shared_clones_in(std::span<const MarkedResource> listed,
                                          std::string_view resource, std::string_view origin,
                                          std::uint32_t origin_oid) {
  std::vector<std::string> names;
  for (const MarkedResource& found : listed) {
    if (found.marker && found.marker->resource == resource && found.marker->origin == origin &&
        found.marker->origin_oid == origin_oid && !found.marker->kept)
      names.push_back(found.name);
  }
  return names;
}

}  // namespace

std::vector<std::string> shared_clones(repo::Connection& connection, std::string_view resource,
                                       std::string_view origin, std::uint32_t origin_oid) {
  return shared_clones_in(list(connection), resource, origin, origin_oid);
}

std::optional<std::string> claim_free(repo::Connection& session, std::string_view resource,
                                      std::string_view origin, std::uint32_t origin_oid,
                                      std::string_view preferred) {
  const std::vector<MarkedResource> listed = list(session);
  return claim_free(session, resource, origin, origin_oid, preferred, listed);
}

std::optional<std::string> claim_free(repo::Connection& session, std::string_view resource,
                                      std::string_view origin, std::uint32_t origin_oid,
                                      std::string_view preferred,
                                      std::span<const MarkedResource> listed) {
  std::vector<std::string> candidates = shared_clones_in(listed, resource, origin, origin_oid);
  const auto first = std::find(candidates.begin(), candidates.end(), preferred);
  if (first != candidates.end()) std::rotate(candidates.begin(), first, first + 1);
  for (const std::string& name : candidates) {
    if (!try_claim(session, name)) continue;
    // Between the listing and the claim its holder may have dropped it (dirty) or re-marked it.
    const Found now = find(session, name);
    if (now.state == DatabaseState::valid && now.marker && now.marker->resource == resource &&
        now.marker->origin == origin && now.marker->origin_oid == origin_oid && !now.marker->kept)
      return name;
    release_claim(session, name);
  }
  return std::nullopt;
}

Owner shared_clone_of(std::string resource, std::string origin) {
  return [resource = std::move(resource), origin = std::move(origin)](const RunMarker& marker) {
    return marker.resource == resource && marker.origin == origin;
  };
}

bool drop_if_stale(const repo::DatabaseUrl& server, std::unique_ptr<repo::Connection>& connection,
                   std::string_view database, const RunMarker& listed) {
  if (!connection || !connection->is_alive()) connection = repo::connect(server);
  // A fresh one first, without its claim: a marker once stale stays stale (a spent clone is not
  // re-marked, a rebuilt template never gets its old oid back), so only a stale one is worth the
  // claim and the check again under it. Every process's reap passes the run's pooled databases.
  if (listed.origin.empty() || !stale(*connection, listed)) return false;
  if (!try_claim(*connection, database)) return false;
  bool dropped = false;
  try {
    if (stale(*connection, listed)) {
      const std::string text = listed.serialize();
      dropped = drop_if_owned(server, connection, database,
                              [&text](const RunMarker& now) { return now.serialize() == text; });
    }
  } catch (...) {
    if (connection && connection->is_alive()) release_claim(*connection, database);
    throw;
  }
  if (connection && connection->is_alive()) release_claim(*connection, database);
  return dropped;
}

bool mark_spent(repo::Connection& connection, std::string_view database, const Owner& owner,
                const RunMarker& spent) {
  if (!try_claim(connection, database)) return false;
  bool marked = false;
  try {
    const std::optional<RunMarker> now = marker_of(connection, database);
    if (now && owner(*now)) {
      RunMarker marker = spent;
      marker.resource = std::string(kSpentResource);
      mark(connection, database, marker);
      marked = true;
    }
  } catch (...) {
    if (connection.is_alive()) release_claim(connection, database);
    throw;
  }
  release_claim(connection, database);
  return marked;
}

std::optional<std::string> start_dropping_spent(std::unique_ptr<repo::Connection>& connection) {
  auto* postgres = dynamic_cast<repo::PostgresConnection*>(connection.get());
  if (postgres == nullptr)
    throw Error(FaultClass::internal, "start_dropping_spent() needs a PostgreSQL connection");
  for (const MarkedResource& found : list(*connection)) {
    if (!found.marker || found.marker->resource != kSpentResource || found.marker->kept) continue;
    if (!try_claim(*connection, found.name)) continue;
    const std::int32_t key = key_of(found.name);
    // Without waiting: a remover holding the lock is dropping it already.
    if (!connection
             ->query_value<bool>("SELECT pg_try_advisory_lock($1::int, $2::int)", kDropLockClass,
                                 key)
             .value_or(false)) {
      release_claim(*connection, found.name);
      continue;
    }
    const Found now = find(*connection, found.name);
    if (now.state == DatabaseState::absent || !now.marker ||
        now.marker->serialize() != found.marker->serialize()) {
      connection->query("SELECT pg_advisory_unlock($1::int, $2::int)", kDropLockClass, key);
      release_claim(*connection, found.name);
      continue;
    }
    const std::string drop = prepare_force_drop(*connection, found.name, now.state);
    if (PQsendQuery(postgres->native_handle(), drop.c_str()) != 1) {
      throw Error(FaultClass::connectivity,
                  fmt::format("cannot send the drop of {}: {}", found.name,
                              PQerrorMessage(postgres->native_handle())));
    }
    // Closing unread: the server finishes the drop, then ends the session (claim and lock go).
    connection.reset();
    return found.name;
  }
  return std::nullopt;
}

// ---- directories -----------------------------------------------------------------------------

void mark(const fs::path& directory, const RunMarker& marker) {
  write_marker_file(directory / kMarkerFileName, marker);
}

std::optional<RunMarker> marker_of(const fs::path& directory) {
  return read_marker_file(directory / kMarkerFileName);
}

bool keep(const fs::path& directory, const Owner& owner) {
  std::optional<RunMarker> marker = marker_of(directory);
  if (!marker || !owner(*marker)) return false;
  marker->kept = true;
  mark(directory, *marker);
  return true;
}

std::vector<MarkedResource> list(const fs::path& base, std::string_view prefix) {
  std::vector<MarkedResource> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    if (!entry.path().filename().string().starts_with(prefix) || !entry.is_directory(ec)) continue;
    MarkedResource resource;
    resource.name = entry.path().string();
    try {
      resource.marker = marker_of(entry.path());
    } catch (const Error& e) {
      resource.problem = e.message();
    }
    found.push_back(std::move(resource));
  }
  std::sort(found.begin(), found.end(),
            [](const MarkedResource& a, const MarkedResource& b) { return a.name < b.name; });
  return found;
}

bool drop_if_owned(const fs::path& directory, const Owner& owner) {
  auto marker = marker_of(directory);
  if (!marker || !owner(*marker)) return false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec))
    if (entry.path().filename() != kMarkerFileName) fs::remove_all(entry.path(), ec);
  fs::remove(directory / kMarkerFileName, ec);  // the marker goes last
  fs::remove(directory, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw Error(FaultClass::provisioning,
                fmt::format("cannot remove {}: {}", directory.string(), ec.message()));
  }
  return true;
}

std::vector<fs::path> reap_orphans(const fs::path& base, std::string_view prefix,
                                   std::string_view resource, std::chrono::seconds grace) {
  std::vector<fs::path> reaped;
  const std::string host = this_host_name();
  for (const MarkedResource& found : list(base, prefix)) {
    if (!found.marker || found.marker->resource != resource) continue;
    try {
      if (!is_orphan(*found.marker, std::chrono::system_clock::now(), grace, host)) continue;
      const RunMarker listed = *found.marker;
      if (drop_if_owned(found.name, [&listed](const RunMarker& now) { return now == listed; }))
        reaped.emplace_back(found.name);
    } catch (const std::exception& e) {
      detail::log().warn("not reaping {}: {}", found.name, e.what());
    }
  }
  return reaped;
}

}  // namespace gamebot::harness::marked
