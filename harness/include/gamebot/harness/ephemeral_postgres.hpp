#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/run_marker.hpp"

namespace gamebot::harness {

// Server directories are local to this host, where is_orphan() checks the
// owner's liveness exactly (pid, its start time, the boot id); the grace
// period only guards against the unforeseen, so it is long: a week.
inline constexpr std::chrono::hours kDefaultServerOrphanGrace{24 * 7};

struct EphemeralPostgresOptions {
  // empty: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin
  std::string bindir;
  // empty: default_base_dir(); parent of the server directories and of the spares
  std::filesystem::path base_dir;
  // empty: $XDG_CACHE_HOME/gamebot/pg-<version>-<uid>, else
  // default_base_dir()/gamebot-pg-cache-<uid>-<version>
  std::filesystem::path cache_dir;
  bool use_cache = true;                   // start from a cached cluster image (initdb once)
  int spare_clusters = 1;                  // ready copies of the image kept in base_dir (0: none
                                           // taken or made)
  std::string run_as_user = "nobody";      // server owner when this process runs as root
  std::string superuser = "postgres";      // superuser role, trusted on the private socket
  std::chrono::seconds start_timeout{60};  // pg_ctl start -w -t
  std::vector<std::pair<std::string, std::string>> settings;  // extra postgresql.conf settings
  bool reap_orphans = true;  // reap servers of dead owners in base_dir before starting
  std::chrono::seconds orphan_grace = kDefaultServerOrphanGrace;  // see is_orphan()
  bool register_teardown = true;  // also stop on exit/SIGINT/SIGTERM (process_teardown())
  std::string run_id;             // recorded in the marker; empty: a new RunId
};

// How a start went (for telemetry and the benchmark).
struct EphemeralPostgresTimings {
  bool from_cache = false;             // the cluster came from the cached image
  bool from_spare = false;             // ... as a spare copy prepared by an earlier start
  std::chrono::nanoseconds initdb{0};  // initdb (zero when from the cache)
  std::chrono::nanoseconds copy{0};    // copying the image in (or renaming a spare)
  std::chrono::nanoseconds start{0};   // pg_ctl start -w
  std::chrono::nanoseconds total{0};   // constructor entry to ready
};

// A private, throwaway PostgreSQL server for one run: a 0700 directory under
// base_dir holding the cluster, the unix socket (no TCP: listen_addresses='')
// and a RunMarker; tuned for tests (fsync, synchronous_commit and
// full_page_writes off). Runs as `run_as_user` when this process is root.
//
// Start-up cost is kept off the critical path with a cached cluster image:
// - no image yet: initdb for this server; once it is up, a background thread
//   runs a second initdb and stores it as the image (so the first start waits
//   for initdb + pg_ctl start only);
// - image present: copy it (~1,000 files), or better, take a spare — a copy a
//   background thread made after an earlier start (`spare_clusters`, kept
//   in base_dir) — with one rename.
// stop() and the destructor wait for the background thread first. An image or
// spare is renamed into place only when complete, so a crash never leaves a
// half-made one in use; leftovers are cleaned by the next builder.
//
// Stopped (`pg_ctl stop -m immediate`) and deleted by stop()/the destructor, on
// exit and signals (register_teardown), or — after SIGKILL — by the next
// start's reaper; unless kept (keep()). Concurrent instances (threads or processes) share nothing
// but the read-only cached image.
//
// Move-only. The accessors are thread-safe; construction and destruction are not
// (one owner).
class EphemeralPostgres {
 public:
  // Starts the server; ready to accept connections when it returns. Throws
  // gamebot::Error(configuration) when the server binaries are missing (naming
  // the Debian package `postgresql`), the run-as user does not exist or
  // base_dir is unusable; gamebot::Error(provisioning) when initdb or the start
  // fails (with the tail of the server log). Nothing is left behind on failure.
  explicit EphemeralPostgres(EphemeralPostgresOptions options = {});
  // Stops the server and deletes its directory. noexcept; a failure is logged
  // and the directory kept with its marker for the next reaper.
  ~EphemeralPostgres();
  EphemeralPostgres(EphemeralPostgres&&) noexcept;
  EphemeralPostgres& operator=(EphemeralPostgres&&) noexcept;
  EphemeralPostgres(const EphemeralPostgres&) = delete;
  EphemeralPostgres& operator=(const EphemeralPostgres&) = delete;

  // libpq URL for the superuser on the socket:
  // postgresql://postgres@/<database>?host=<socket dir>&port=<port>. Has no password.
  std::string url(std::string_view database = "postgres") const;
  const std::filesystem::path& directory() const noexcept;  // the server directory
  std::filesystem::path socket_dir() const;                 // == directory()
  std::filesystem::path data_dir() const;                   // directory()/data
  int port() const noexcept;
  const std::string& superuser() const noexcept;
  const EphemeralPostgresTimings& timings() const noexcept;
  bool running() const noexcept;

  // Waits until the background work the start left (building the cached
  // image, preparing spares) is done, e.g. before measuring or forking.
  void finish_background_work() noexcept;

  // Waits for the background work, then stops and deletes the server
  // (idempotent); the destructor then does nothing.
  void stop() noexcept;

  // --keep: waits for the background work, marks the directory kept (RunMarker::kept: no
  // reaper takes it) and leaves the server running past this object and this process; stop()
  // and the destructor then do nothing. remove_kept() (`gamebot-store test-dbs reap --kept` with
  // the server's URL) stops and deletes it. Throws gamebot::Error if the marker cannot be written.
  void keep();

  // Stops and deletes the kept server in `directory` (a kept marker of a server, owned by this
  // user); false, touching nothing, for anything else. Errors are logged, not thrown.
  static bool remove_kept(const std::filesystem::path& directory);

  // The directory of server binaries per the rules of `bindir` above. Throws
  // gamebot::Error(configuration) saying to install `postgresql` if none has
  // initdb, pg_ctl and postgres.
  static std::string find_bindir(const std::string& override_bindir = {});

  // Where servers go without a base_dir: $TMPDIR if set, else /dev/shm when it
  // is a tmpfs with at least 1 GiB free (creating a cluster's ~1,000 files in
  // RAM is far cheaper than on a journaling disk), else /tmp.
  static std::filesystem::path default_base_dir();

  // Where the cached cluster image for these options lives (it may not exist
  // yet); empty when no usable cache directory exists. Creates the cache
  // directory. Throws like find_bindir().
  static std::filesystem::path cached_image_path(const EphemeralPostgresOptions& options = {});

  // Stops and deletes every server directory under `base_dir` (empty: the
  // default) whose marker says its owner is gone (is_orphan with this host),
  // and drops spare clusters whose cached image no longer exists. Directories
  // without a marker or owned by another user are never touched. Returns the
  // directories removed. Logs each; errors are logged, not thrown.
  static std::vector<std::filesystem::path> reap_orphans(
      const std::filesystem::path& base_dir = {},
      std::chrono::seconds grace = kDefaultServerOrphanGrace);

  // Name of the marker file inside a server directory, and the prefix of the
  // server directories' names.
  static constexpr std::string_view kMarkerFile = marked::kMarkerFileName;
  static constexpr std::string_view kDirectoryPrefix = "gamebot-pg-";

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gamebot::harness
