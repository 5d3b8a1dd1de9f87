#include "gamebot/harness/shared_postgres.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/database_url.hpp"
#include "log.hpp"
#include "private_directory.hpp"
#include "proc.hpp"

namespace gamebot::harness {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHolderResource = "shared-postgres-holder";
constexpr std::string_view kLockFile = "lock";
constexpr std::string_view kServerFile = "server";  // the server directory, then its URL
constexpr std::string_view kHoldersDir = "holders";

// An exclusive flock on <run dir>/lock for one decision; the kernel drops it if we die.
class RunLock {
 public:
  explicit RunLock(const fs::path& run_dir) {
    const fs::path path = run_dir / kLockFile;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) {
      throw Error(FaultClass::provisioning,
                  fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd_);
      throw Error(FaultClass::provisioning,
                  fmt::format("cannot lock {}: {}", path.string(), std::strerror(error)));
    }
  }
  ~RunLock() { ::close(fd_); }  // releases the lock
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

struct Server {
  fs::path directory;
  std::string url;
};

std::optional<Server> recorded_server(const fs::path& run_dir) {
  std::ifstream in(run_dir / kServerFile);
  Server server;
  std::string directory;
  if (!in || !std::getline(in, directory) || !std::getline(in, server.url) || directory.empty() ||
      server.url.empty())
    return std::nullopt;
  server.directory = directory;
  return server;
}

void record_server(const fs::path& run_dir, const Server& server) {
  const fs::path path = run_dir / kServerFile;
  const fs::path temporary = path.string() + fmt::format(".tmp-{}", static_cast<long>(::getpid()));
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << server.directory.string() << "\n" << server.url << "\n";
    out.flush();
    if (!out)
      throw Error(FaultClass::provisioning, fmt::format("cannot write {}", temporary.string()));
  }
  fs::rename(temporary, path);
}

fs::path holder_file(const fs::path& run_dir, const RunMarker& holder) {
  return run_dir / kHoldersDir / fmt::format("{}-{}", holder.pid, holder.pid_start);
}

// The lease of `holder` (a pid on this host), as is_orphan() judges it.
RunMarker holder_marker(pid_t holder, const std::string& run_id) {
  RunMarker marker = RunMarker::for_this_process(run_id, std::string(kHolderResource));
  if (holder != ::getpid()) {
    const auto facts = detail::process_facts(holder);
    if (!facts) {
      throw Error(FaultClass::configuration,
                  fmt::format("cannot hold the shared server for process {}: it does not run",
                              static_cast<long>(holder)));
    }
    marker.pid = static_cast<long>(holder);
    marker.pid_start = facts->start_ticks;
  }
  return marker;
}

// Deletes the leases of dead holders (and unreadable ones); the number of live ones left.
int prune_holders(const fs::path& run_dir) {
  const std::string host = this_host_name();
  const auto now = std::chrono::system_clock::now();
  int live = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(run_dir / kHoldersDir, error)) {
    std::optional<RunMarker> marker;
    try {
      marker = read_marker_file(entry.path());
    } catch (const Error& e) {
      detail::log().warn("shared private server: dropping the unreadable lease {}: {}",
                         entry.path().string(), e.message());
    }
    if (marker && marker->resource == kHolderResource &&
        !is_orphan(*marker, now, kDefaultServerOrphanGrace, host)) {
      ++live;
      continue;
    }
    std::error_code ignored;
    fs::remove(entry.path(), ignored);
  }
  return live;
}

// Stops and deletes the recorded server. True when none is recorded any more.
bool stop_recorded(const fs::path& run_dir, const Server& server) {
  std::error_code error;
  if (fs::exists(server.directory, error) && !EphemeralPostgres::remove_kept(server.directory) &&
      fs::exists(server.directory, error)) {
    detail::log().error("shared private server: could not stop {}; the next run retries",
                        server.directory.string());
    return false;
  }
  fs::remove(run_dir / kServerFile, error);
  return true;
}

void prepare_run_dir(const fs::path& run_dir) {
  if (!run_dir.is_absolute()) {
    throw Error(FaultClass::configuration, fmt::format("{} must be an absolute path, not '{}'",
                                                       kEnvSharedServerDir, run_dir.string()));
  }
  detail::ensure_private_directory(run_dir);
  detail::ensure_private_directory(run_dir / kHoldersDir);
}

// Under the run lock: the running server, started (a stranded one stopped first) if need be,
// and `holder`'s lease written.
Server hold_locked(const fs::path& run_dir, const RunMarker& holder,
                   EphemeralPostgresOptions options) {
  const int live = prune_holders(run_dir);
  std::optional<Server> server = recorded_server(run_dir);
  if (server) {
    std::error_code error;
    const bool running = fs::exists(server->directory / "data" / "postmaster.pid", error);
    if (live == 0 || !running) {
      detail::log().info("shared private server: stopping {} ({})", server->directory.string(),
                         live == 0 ? "all its holders are gone" : "it no longer runs");
      if (!stop_recorded(run_dir, *server)) {
        throw Error(FaultClass::provisioning,
                    fmt::format("the stranded shared server in {} cannot be stopped",
                                server->directory.string()));
      }
      server.reset();
    }
  }
  if (!server) {
    options.run_id = holder.run_id;
    EphemeralPostgres started(std::move(options));
    // Kept: its starter's end must not make it an orphan; the holders decide (see the header).
    started.keep();
    server = Server{started.directory(), started.url("postgres")};
    record_server(run_dir, *server);
    detail::log().info("shared private server: started {} for {}", server->directory.string(),
                       run_dir.string());
  }
  write_marker_file(holder_file(run_dir, holder), holder);
  return *server;
}

bool release_locked(const fs::path& run_dir, pid_t holder) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(run_dir / kHoldersDir, error)) {
    if (entry.path().filename().string().starts_with(fmt::format("{}-", static_cast<long>(holder))))
      fs::remove(entry.path(), error);
  }
  const int live = prune_holders(run_dir);
  const std::optional<Server> server = recorded_server(run_dir);
  if (!server) return true;
  if (live > 0) return false;
  detail::log().info("shared private server: the last holder left; stopping {}",
                     server->directory.string());
  return stop_recorded(run_dir, *server);
}

}  // namespace

std::optional<fs::path> SharedPostgres::run_dir_from_environment() {
  const char* value = std::getenv(std::string(kEnvSharedServerDir).c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  const fs::path dir(value);
  if (!dir.is_absolute()) {
    throw Error(FaultClass::configuration,
                fmt::format("{} must be an absolute path, not '{}'", kEnvSharedServerDir, value));
  }
  return dir;
}

SharedPostgres SharedPostgres::acquire(const fs::path& run_dir, const std::string& run_id,
                                       EphemeralPostgresOptions options) {
  prepare_run_dir(run_dir);
  const RunMarker holder = holder_marker(::getpid(), run_id);
  RunLock lock(run_dir);
  Server server = hold_locked(run_dir, holder, std::move(options));
  return SharedPostgres(run_dir, std::move(server.directory), std::move(server.url));
}

std::string SharedPostgres::hold_for(const fs::path& run_dir, pid_t holder,
                                     const std::string& run_id, EphemeralPostgresOptions options) {
  prepare_run_dir(run_dir);
  const RunMarker marker = holder_marker(holder, run_id);
  RunLock lock(run_dir);
  return hold_locked(run_dir, marker, std::move(options)).url;
}

bool SharedPostgres::release_for(const fs::path& run_dir, pid_t holder) noexcept {
  try {
    std::error_code error;
    if (!fs::is_directory(run_dir / kHoldersDir, error)) return true;  // never held
    prepare_run_dir(run_dir);
    RunLock lock(run_dir);
    return release_locked(run_dir, holder);
  } catch (const std::exception& e) {
    detail::log().error("shared private server in {}: releasing failed: {}", run_dir.string(),
                        e.what());
    return false;
  }
}

SharedPostgres::SharedPostgres(fs::path run_dir, fs::path directory, std::string url)
    : run_dir_(std::move(run_dir)),
      directory_(std::move(directory)),
      url_(std::move(url)),
      held_(true) {}

SharedPostgres::SharedPostgres(SharedPostgres&& other) noexcept
    : run_dir_(std::move(other.run_dir_)),
      directory_(std::move(other.directory_)),
      url_(std::move(other.url_)),
      held_(std::exchange(other.held_, false)) {}

SharedPostgres& SharedPostgres::operator=(SharedPostgres&& other) noexcept {
  if (this != &other) {
    release();
    run_dir_ = std::move(other.run_dir_);
    directory_ = std::move(other.directory_);
    url_ = std::move(other.url_);
    held_ = std::exchange(other.held_, false);
  }
  return *this;
}

SharedPostgres::~SharedPostgres() {
  release();
}

std::string SharedPostgres::url(std::string_view database) const {
  return repo::DatabaseUrl::parse(url_).with_database(std::string(database)).redacted();
}

const fs::path& SharedPostgres::directory() const noexcept {
  return directory_;
}

void SharedPostgres::release() noexcept {
  if (!held_) return;
  held_ = false;
  release_for(run_dir_, ::getpid());
}

}  // namespace gamebot::harness
