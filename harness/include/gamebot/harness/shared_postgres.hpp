#pragma once

// One private PostgreSQL server shared by the processes of one test run. A suite registered one
// CTest test per case runs every case in its own process; without a PostgreSQL URL each of them
// used to start and stop a private server of its own (~570 ms each). With a run directory (the
// CTest fixture of gamebot_discover_tests() sets kEnvSharedServerDir for every test of the
// build), they share one.
//
// Lifetime rule:
//   - Holders: each process using the server holds it through a lease file in
//     <run dir>/holders (a RunMarker: pid, its start time, the boot id). A holder is alive by
//     the harness's one liveness rule, is_orphan(): a SIGKILLed holder's lease is dead at once,
//     though its file stays.
//   - The first holder starts the server; the server's own marker is kept (RunMarker::kept), so
//     the per-process reaper of private servers never takes it while its starter is gone and
//     other holders use it.
//   - Releasing a hold drops its lease, then stops and deletes the server when no live holder is
//     left. The CTest fixture holds it for the ctest process itself (its setup test takes a hold
//     for its parent, ctest; its cleanup test releases it), so consecutive one-case processes
//     find it running, and the server stops at the end of the run at the latest.
//   - A server whose holders are all dead (ctest and its tests SIGKILLed) is stranded; the next
//     hold or release in the same run directory stops and deletes it first.
//   - All decisions are taken under an flock on <run dir>/lock, which the kernel releases when
//     its holder dies.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "gamebot/harness/ephemeral_postgres.hpp"

namespace gamebot::harness {

// The run directory of the shared private server (absolute path). Unset: each process starts its
// own private server.
inline constexpr std::string_view kEnvSharedServerDir = "GAMEBOT_TEST_SHARED_SERVER_DIR";

// A hold on the shared private server of a run directory. Move-only.
class SharedPostgres {
 public:
  // The run directory named by kEnvSharedServerDir; nullopt when unset. Throws
  // gamebot::Error(configuration) for a relative path.
  static std::optional<std::filesystem::path> run_dir_from_environment();

  // Holds the run's server for this process, starting it (with `options`) when none runs, and
  // stopping a stranded one first. `run_id` is recorded in the lease. Creates `run_dir` (private,
  // its parent must exist). Throws gamebot::Error(configuration) for an unusable run directory,
  // and as EphemeralPostgres does when the server cannot start.
  static SharedPostgres acquire(const std::filesystem::path& run_dir, const std::string& run_id,
                                EphemeralPostgresOptions options = {});

  // For the CTest fixture: holds the server like acquire(), but for the process `holder` (on
  // this host, e.g. ctest, the parent of the fixture's command), past this process's end. Returns
  // the server's URL for the database "postgres".
  static std::string hold_for(const std::filesystem::path& run_dir, pid_t holder,
                              const std::string& run_id, EphemeralPostgresOptions options = {});

  // Drops the hold of `holder` (if any), then stops and deletes the server when no live holder
  // is left. True when no server runs for the run directory afterwards. Errors are logged.
  static bool release_for(const std::filesystem::path& run_dir, pid_t holder) noexcept;

  SharedPostgres(SharedPostgres&&) noexcept;
  SharedPostgres& operator=(SharedPostgres&&) noexcept;
  SharedPostgres(const SharedPostgres&) = delete;
  SharedPostgres& operator=(const SharedPostgres&) = delete;
  // Releases the hold (release()).
  ~SharedPostgres();

  // The superuser's URL on the server's socket for `database` (no password).
  std::string url(std::string_view database = "postgres") const;
  // The server directory (EphemeralPostgres::directory() of its starter).
  const std::filesystem::path& directory() const noexcept;

  // Drops this process's hold, and stops the server if it was the last live one. Idempotent.
  void release() noexcept;

 private:
  SharedPostgres(std::filesystem::path run_dir, std::filesystem::path directory, std::string url);
  std::filesystem::path run_dir_;
  std::filesystem::path directory_;
  std::string url_;  // for the database "postgres"
  bool held_ = false;
};

}  // namespace gamebot::harness
