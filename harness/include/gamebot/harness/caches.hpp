#pragma once

// The harness's caches on this host: the one list of where they live and what they are, read by
// the private server, the SQLite provider and `gamebot-store cache list|clear`. Each cache is a
// private directory (this user's, mode 0700, not a symlink; private_directory.hpp): one that is
// not is never listed as ours nor removed, whatever its name.
//   - PostgreSQL cluster image cache: $XDG_CACHE_HOME/gamebot/pg-<version>-<uid>, else
//     <server base>/gamebot-pg-cache-<uid>-<version> (EphemeralPostgres; base: default_base_dir());
//   - spare clusters copied from the image: <server base>/gamebot-spares-<uid>-<hash>;
//   - SQLite template cache: <dir>/gamebot-sqlite-cache-<uid>, beside the SQLite URL's file or in
//     $TMPDIR (else /tmp);
//   - serializer preflight passes: $TMPDIR (else /tmp)/gamebot-preflight-cache-<uid>, a file per
//     suite that passed, named by its key (preflight_cache.hpp);
//   - pooled run database hints: $TMPDIR (else /tmp)/gamebot-pool-hints-<uid>, a file per server
//     and template naming the pooled database last released there (provision/pool_hint.hpp).
// PostgreSQL template databases are on a server, not here: `gamebot-store test-dbs` lists them.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gamebot::harness::caches {

inline constexpr std::string_view kClusterImagePrefix = "gamebot-pg-cache-";  // + uid-version
inline constexpr std::string_view kClusterImageXdgPrefix = "pg-";             // in XDG/gamebot
inline constexpr std::string_view kSparesPrefix = "gamebot-spares-";          // + uid-hash
inline constexpr std::string_view kSqliteTemplatePrefix = "gamebot-sqlite-cache-";  // + uid
inline constexpr std::string_view kPreflightPrefix = "gamebot-preflight-cache-";    // + uid
inline constexpr std::string_view kPoolHintsPrefix = "gamebot-pool-hints-";         // + uid

// One cache directory found.
struct Cache {
  std::filesystem::path path;
  std::uintmax_t bytes = 0;  // total size of its regular files
  std::string what;          // "PostgreSQL cluster image", "PostgreSQL spare clusters", ...
};

// Where the caches kept in a temporary directory live: $TMPDIR when it is an absolute path,
// else /tmp (a relative $TMPDIR would name another place from each working directory).
std::filesystem::path temporary_directory();

// The SQLite template cache directory of this user in `dir`.
std::filesystem::path sqlite_template_cache(const std::filesystem::path& dir);

// This user's preflight cache directory in `dir`.
std::filesystem::path preflight_cache(const std::filesystem::path& dir);

// This user's pooled run database hints directory in `dir`.
std::filesystem::path pool_hints(const std::filesystem::path& dir);

// This user's caches in the default places ($XDG_CACHE_HOME/gamebot, the private server's base
// directory, $TMPDIR or /tmp) and in `also_in`, by path. Never throws for an unreadable place.
std::vector<Cache> list(std::span<const std::filesystem::path> also_in = {});

// Removes `cache` (a list() result) if it is still a private directory of this user; true if
// removed. Throws gamebot::Error(provisioning) when removal fails.
bool clear(const Cache& cache);

}  // namespace gamebot::harness::caches
