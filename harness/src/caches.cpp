#include "gamebot/harness/caches.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "private_directory.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness::caches {

namespace {

std::string uid_text() {
  return std::to_string(static_cast<unsigned long>(::geteuid()));
}

std::uintmax_t size_of(const fs::path& directory) {
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator
           it(directory, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) bytes += it->file_size(size_ec);
  }
  return bytes;
}

// What the directory `name` (in a place the harness caches in) is; nullopt when not a cache.
std::optional<std::string> kind_of(std::string_view name, bool in_xdg) {
  const std::string uid = uid_text();
  if (in_xdg && name.starts_with(kClusterImageXdgPrefix) && name.ends_with("-" + uid))
    return "PostgreSQL cluster image cache (private server)";
  if (name.starts_with(std::string(kClusterImagePrefix) + uid + "-"))
    return "PostgreSQL cluster image cache (private server)";
  if (name.starts_with(kSparesPrefix)) return "PostgreSQL spare clusters (private server)";
  if (name == std::string(kSqliteTemplatePrefix) + uid) return "SQLite template cache";
  if (name == std::string(kPreflightPrefix) + uid) return "serializer preflight passes";
  if (name == std::string(kPoolHintsPrefix) + uid) return "PostgreSQL pooled database hints";
  return std::nullopt;
}

void scan(const fs::path& place, bool in_xdg, std::vector<Cache>& found) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(place, ec)) {
    const auto kind = kind_of(entry.path().filename().string(), in_xdg);
    if (!kind || !detail::is_private_directory(entry.path())) continue;
    const bool listed = std::any_of(found.begin(), found.end(),
                                    [&](const Cache& c) { return c.path == entry.path(); });
    if (!listed) found.push_back({entry.path(), size_of(entry.path()), *kind});
  }
}

}  // namespace

fs::path temporary_directory() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp == '/' ? fs::path(tmp) : fs::path("/tmp");
}

fs::path sqlite_template_cache(const fs::path& dir) {
  return dir / (std::string(kSqliteTemplatePrefix) + uid_text());
}

fs::path preflight_cache(const fs::path& dir) {
  return dir / (std::string(kPreflightPrefix) + uid_text());
}

fs::path pool_hints(const fs::path& dir) {
  return dir / (std::string(kPoolHintsPrefix) + uid_text());
}

std::vector<Cache> list(std::span<const fs::path> also_in) {
  std::vector<Cache> found;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/')
    scan(fs::path(xdg) / "gamebot", true, found);
  try {
    scan(EphemeralPostgres::default_base_dir(), false, found);
  } catch (const std::exception&) {
    // No usable base directory: nothing of the server's there.
  }
  scan(temporary_directory(), false, found);
  for (const fs::path& place : also_in) scan(place, false, found);
  std::sort(found.begin(), found.end(),
            [](const Cache& a, const Cache& b) { return a.path < b.path; });
  return found;
}

bool clear(const Cache& cache) {
  if (!kind_of(cache.path.filename().string(), cache.path.parent_path().filename() == "gamebot") ||
      !detail::is_private_directory(cache.path))
    return false;
  std::error_code ec;
  fs::remove_all(cache.path, ec);
  if (ec) {
    throw Error(FaultClass::provisioning,
                fmt::format("cannot remove {}: {}", cache.path.string(), ec.message()));
  }
  return true;
}

}  // namespace gamebot::harness::caches
