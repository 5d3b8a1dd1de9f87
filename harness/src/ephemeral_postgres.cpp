#include "gamebot/harness/ephemeral_postgres.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/caches.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/repo/database_url.hpp"
#include "log.hpp"
#include "private_directory.hpp"
#include "process.hpp"

namespace gamebot::harness {
namespace fs = std::filesystem;
using detail::Identity;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPort = 5432;
constexpr std::string_view kResource = "ephemeral-postgres";
// Bump when the image layout or the initdb arguments change.
constexpr std::string_view kImageFormat = "v1";
constexpr std::size_t kUnixSocketPathMax = 107;
constexpr std::string_view kSparesPrefix = caches::kSparesPrefix;

[[noreturn]] void configuration_error(std::string message) {
  throw Error(FaultClass::configuration, std::move(message));
}

[[noreturn]] void provisioning_error(std::string message) {
  throw Error(FaultClass::provisioning, std::move(message));
}

std::string errno_text() {
  return std::strerror(errno);
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

bool is_executable(const fs::path& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

bool has_server_binaries(const fs::path& bindir) {
  return is_executable(bindir / "initdb") && is_executable(bindir / "pg_ctl") &&
         is_executable(bindir / "postgres");
}

// The last `count` lines of a text file ("" when unreadable).
std::string tail_of(const fs::path& path, std::size_t count) {
  std::ifstream in(path);
  if (!in) return {};
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  std::string out;
  for (const std::string& l : lines) out += "\n    " + l;
  return out;
}

// FNV-1a: a stable short hash for cache keys.
std::string stable_hash(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", hash);
}

std::string random_suffix() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:012x}", engine() & 0xffffffffffffULL);
}

// $TMPDIR if set; else /dev/shm when it is a tmpfs with room (creating the
// ~1,000 files of a cluster in RAM is far cheaper than on a journaling disk
// file system); else /tmp.
fs::path default_temp_dir() {
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp == '/') return tmp;
  struct statfs fs_info {};
  struct statvfs space {};
  constexpr unsigned long long kMinimumRoom = 1ULL << 30;
  if (::statfs("/dev/shm", &fs_info) == 0 && fs_info.f_type == TMPFS_MAGIC &&
      ::statvfs("/dev/shm", &space) == 0 &&
      static_cast<unsigned long long>(space.f_bavail) * space.f_frsize >= kMinimumRoom &&
      ::access("/dev/shm", W_OK | X_OK) == 0) {
    return "/dev/shm";
  }
  return "/tmp";
}

// "15.18" from "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
std::string server_version(const std::string& bindir) {
  static std::mutex mutex;
  static std::map<std::string, std::string> versions;
  std::lock_guard lock(mutex);
  if (auto it = versions.find(bindir); it != versions.end()) return it->second;
  detail::CommandResult result = detail::run_command({bindir + "/postgres", "-V"}, {});
  if (!result.ok()) {
    configuration_error(fmt::format("{}/postgres -V failed ({}): {}", bindir, result.describe(),
                                    trim(result.output)));
  }
  std::string output = trim(result.output);
  std::string version;
  if (std::size_t at = output.find(") "); at != std::string::npos) {
    std::istringstream words(output.substr(at + 2));
    words >> version;
  }
  if (version.empty()) version = stable_hash(output).substr(0, 8);
  std::string safe;
  for (char c : version) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.') safe += c;
  }
  versions[bindir] = safe;
  return safe;
}

// The user that owns (and runs) a server directory created by this process.
std::optional<Identity> server_identity(const std::string& run_as_user) {
  if (::geteuid() != 0) return std::nullopt;
  auto identity = detail::lookup_user(run_as_user);
  if (!identity) {
    configuration_error(fmt::format(
        "running as root, the PostgreSQL server must run as an unprivileged user, but user "
        "'{}' does not exist (set EphemeralPostgresOptions::run_as_user)",
        run_as_user));
  }
  if (identity->uid == 0) {
    configuration_error(
        fmt::format("run_as_user '{}' is root; PostgreSQL refuses to run as root", run_as_user));
  }
  return identity;
}

// Each directory from `path` up must be searchable by `identity`.
void check_traversable(const fs::path& path, const Identity& identity,
                       const std::string& user_name) {
  for (fs::path dir = fs::absolute(path); !dir.empty(); dir = dir.parent_path()) {
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0) {
      configuration_error(fmt::format("base_dir {}: cannot stat {}: {}", path.string(),
                                      dir.string(), errno_text()));
    }
    mode_t needed = info.st_uid == identity.uid   ? S_IXUSR
                    : info.st_gid == identity.gid ? S_IXGRP
                                                  : S_IXOTH;
    if ((info.st_mode & needed) == 0) {
      configuration_error(fmt::format(
          "base_dir {} is not accessible to user '{}' (the server's owner): {} lacks search "
          "permission; use a base_dir under /tmp",
          path.string(), user_name, dir.string()));
    }
    if (dir == dir.parent_path()) break;
  }
}

// --- fast tree copy -------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void copy_error(const fs::path& path, const char* what) {
  provisioning_error(
      fmt::format("copying the cluster image: {} {}: {}", what, path.string(), errno_text()));
}

void write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      copy_error(path, "write");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Copies [offset, end) with copy_file_range, falling back to read/write.
void copy_range(int in, int out, off_t offset, off_t end, const fs::path& path) {
  while (offset < end) {
    off_t in_offset = offset;
    off_t out_offset = offset;
    ssize_t n = ::copy_file_range(in, &in_offset, out, &out_offset,
                                  static_cast<std::size_t>(end - offset), 0);
    if (n > 0) {
      offset += n;
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
      copy_error(path, "copy_file_range");
    }
    std::vector<char> buffer(1 << 20);
    while (offset < end) {
      auto want = static_cast<std::size_t>(
          std::min<off_t>(end - offset, static_cast<off_t>(buffer.size())));
      ssize_t got = ::pread(in, buffer.data(), want, offset);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) copy_error(path, "read");
      if (::lseek(out, offset, SEEK_SET) < 0) copy_error(path, "seek");
      write_all(out, buffer.data(), static_cast<std::size_t>(got), path);
      offset += got;
    }
  }
}

// The process umask (from /proc, without the racy umask() round trip); 0777
// if unknown, so that every mode is then set explicitly.
mode_t process_umask() {
  static const mode_t mask = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("Umask:"))
        return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
    }
    return static_cast<mode_t>(0777);
  }();
  return mask;
}

// Copies a regular file (`info`: its lstat). `make_sparse`: all-zero 64 KiB
// blocks become holes (used when storing the image: the 16 MB WAL segment is
// mostly zeros); else the source's holes are skipped (SEEK_DATA/SEEK_HOLE), so
// sparse stays sparse. Few system calls per file: a cluster has ~1,000 of them.
void copy_file(int from_dir, const char* name, const struct stat& info, int to_dir,
               const fs::path& to, const std::optional<Identity>& owner, bool make_sparse) {
  const mode_t mode = info.st_mode & 07777;
  Fd in(::openat(from_dir, name, O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) copy_error(to, "open the source of");
  Fd out(::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (out.get() < 0) copy_error(to, "create");
  if (owner && ::fchown(out.get(), owner->uid, owner->gid) != 0) copy_error(to, "chown");
  if ((mode & process_umask()) != 0 && ::fchmod(out.get(), mode) != 0) copy_error(to, "chmod");
  const off_t size = info.st_size;
  if (make_sparse) {
    constexpr std::size_t kBlock = std::size_t{64} * 1024;
    std::vector<char> buffer(kBlock);
    static const std::vector<char> zeros(kBlock, 0);
    off_t offset = 0;
    while (offset < size) {
      ssize_t got = ::pread(in.get(), buffer.data(), kBlock, offset);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) copy_error(to, "read the source of");
      if (std::memcmp(buffer.data(), zeros.data(), static_cast<std::size_t>(got)) != 0) {
        if (::lseek(out.get(), offset, SEEK_SET) < 0) copy_error(to, "seek");
        write_all(out.get(), buffer.data(), static_cast<std::size_t>(got), to);
      }
      offset += got;
    }
    if (::ftruncate(out.get(), size) != 0) copy_error(to, "truncate");
    return;
  }
  if (static_cast<off_t>(info.st_blocks) * 512 >= size) {
    copy_range(in.get(), out.get(), 0, size, to);  // dense: one copy, no hole probing
    return;
  }
  off_t position = 0;
  while (position < size) {
    off_t data = ::lseek(in.get(), position, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      data = position;            // no SEEK_DATA support: copy the rest
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) hole = size;
    copy_range(in.get(), out.get(), data, std::min(hole, size), to);
    position = hole;
  }
  if (::ftruncate(out.get(), size) != 0) copy_error(to, "truncate");
}

// Copies the contents of the open directory `from_dir` into `to_dir`.
void copy_directory_contents(int from_dir, int to_dir, const fs::path& to,
                             const std::optional<Identity>& owner, bool make_sparse) {
  const int listing_fd = ::dup(from_dir);
  if (listing_fd < 0) copy_error(to, "list the source of");
  DIR* listing = ::fdopendir(listing_fd);
  if (listing == nullptr) {
    ::close(listing_fd);
    copy_error(to, "list the source of");
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(listing, ::closedir);
  while (struct dirent* entry = ::readdir(listing)) {
    const char* name = entry->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    const fs::path target = to / name;
    struct stat child {};
    if (::fstatat(from_dir, name, &child, AT_SYMLINK_NOFOLLOW) != 0) {
      copy_error(target, "stat the source of");
    }
    if (S_ISDIR(child.st_mode)) {
      if (::mkdirat(to_dir, name, 0700) != 0) copy_error(target, "mkdir");
      Fd source(::openat(from_dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      Fd created(::openat(to_dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (source.get() < 0 || created.get() < 0) copy_error(target, "open");
      if (owner && ::fchown(created.get(), owner->uid, owner->gid) != 0) {
        copy_error(target, "chown");
      }
      copy_directory_contents(source.get(), created.get(), target, owner, make_sparse);
      if (::fchmod(created.get(), child.st_mode & 07777) != 0) copy_error(target, "chmod");
    } else if (S_ISREG(child.st_mode)) {
      copy_file(from_dir, name, child, to_dir, target, owner, make_sparse);
    } else if (S_ISLNK(child.st_mode)) {
      std::array<char, 4096> link{};
      ssize_t length = ::readlinkat(from_dir, name, link.data(), link.size() - 1);
      if (length < 0) copy_error(target, "readlink");
      if (::symlinkat(link.data(), to_dir, name) != 0) copy_error(target, "symlink");
      if (owner && ::fchownat(to_dir, name, owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) != 0) {
        copy_error(target, "chown");
      }
    }
  }
}

// Copies the tree `from` to the new directory `to`, owned by `owner` if given.
void copy_tree(const fs::path& from, const fs::path& to, const std::optional<Identity>& owner,
               bool make_sparse) {
  Fd source(::open(from.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (source.get() < 0) copy_error(from, "open");
  struct stat info {};
  if (::fstat(source.get(), &info) != 0) copy_error(from, "stat");
  if (::mkdir(to.c_str(), 0700) != 0) copy_error(to, "mkdir");
  Fd target(::open(to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (target.get() < 0) copy_error(to, "open");
  if (owner && ::fchown(target.get(), owner->uid, owner->gid) != 0) copy_error(to, "chown");
  copy_directory_contents(source.get(), target.get(), to, owner, make_sparse);
  if (::fchmod(target.get(), info.st_mode & 07777) != 0) copy_error(to, "chmod");
}

// --- the cluster image cache ------------------------------------------------------

// An flock on a lock file, acquired by polling until a deadline.
class FileLock {
 public:
  FileLock(const fs::path& path, int operation, Clock::time_point deadline) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
    for (;;) {
      if (::flock(fd_, operation | LOCK_NB) == 0) {
        locked_ = true;
        return;
      }
      if (errno != EWOULDBLOCK && errno != EINTR) return;
      if (Clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool locked() const { return locked_; }

 private:
  int fd_ = -1;
  bool locked_ = false;
};

// The cache root if it is safe to use: a directory owned by us, writable by
// nobody else (so nobody can plant a cluster for us to run).
std::optional<fs::path> usable_cache_root(const EphemeralPostgresOptions& options,
                                          const std::string& version) {
  fs::path root = options.cache_dir;
  const auto uid = static_cast<unsigned long>(::geteuid());
  if (root.empty()) {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
      root = fs::path(xdg) / "gamebot" /
             fmt::format("{}{}-{}", caches::kClusterImageXdgPrefix, version, uid);
    } else {
      root = default_temp_dir() / fmt::format("{}{}-{}", caches::kClusterImagePrefix, uid, version);
    }
  }
  std::error_code error;
  if (root.has_parent_path()) fs::create_directories(root.parent_path(), error);
  try {
    detail::ensure_private_directory(root);
  } catch (const Error& e) {
    detail::log().warn("ephemeral postgres: {}; starting without the cache", e.message());
    return std::nullopt;
  }
  return root;
}

fs::path image_path(const fs::path& cache, const std::string& superuser) {
  return cache / fmt::format("image-{}-{}", kImageFormat, stable_hash(superuser));
}

// Spares live in the base directory (a spare becomes a server's cluster by a
// rename, which needs one file system), per image and per server user.
fs::path spares_path(const fs::path& base, const fs::path& image,
                     const std::optional<Identity>& owner) {
  return base / fmt::format("{}{}-{}", kSparesPrefix,
                            owner ? owner->uid : static_cast<uid_t>(::geteuid()),
                            stable_hash(image.string()));
}

// Removes a spares directory of ours whose image no longer exists. True if removed.
bool drop_stale_spares(const fs::path& spares) {
  struct stat info {};
  if (::lstat(spares.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != ::geteuid()) {
    return false;
  }
  std::ifstream record(spares / "image");
  std::string image;
  if (!std::getline(record, image) || image.empty() || fs::exists(fs::path(image) / "PG_VERSION")) {
    return false;
  }
  std::error_code ignored;
  fs::remove_all(spares, ignored);
  detail::log().debug("ephemeral postgres: dropped spares of the vanished image {}", image);
  return true;
}

// Moves a ready spare cluster to `data`. Atomic: two processes never get the same one.
bool claim_spare(const fs::path& spares, const fs::path& data) {
  if (!detail::is_private_directory(spares)) return false;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(spares, error)) {
    if (!entry.path().filename().string().starts_with("ready-")) continue;
    if (::rename(entry.path().c_str(), data.c_str()) == 0) return true;
    if (errno != ENOENT) return false;  // e.g. another file system: spares do not help
  }
  return false;
}

// Tops the spares up to `count` from the image; runs in the background.
void replenish_spares(const fs::path& image, const fs::path& spares,
                      const std::optional<Identity>& owner, int count,
                      const fs::path& lock_path) noexcept {
  fs::path in_progress;
  try {
    detail::ensure_private_directory(spares);
    // Which image the spares copy, so the reaper can drop them once it is gone.
    if (!fs::exists(spares / "image")) {
      std::ofstream(spares / "image") << image.string();
    }
    int ready = 0;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(spares, error)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("ready-")) {
        ++ready;
      } else if (name.starts_with("tmp-")) {
        // tmp-<pid>-<random>: left by a process that died while copying?
        long pid = std::atol(name.c_str() + 4);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
          std::error_code ignored;
          fs::remove_all(entry.path(), ignored);
        }
      }
    }
    if (ready >= count) return;
    FileLock shared(lock_path, LOCK_SH, Clock::now() + std::chrono::seconds(30));
    if (!shared.locked() || !fs::exists(image / "PG_VERSION")) return;
    in_progress = spares / fmt::format("tmp-{}-{}", static_cast<long>(::getpid()), random_suffix());
    copy_tree(image, in_progress, owner, false);
    fs::rename(in_progress, spares / ("ready-" + random_suffix()));
    in_progress.clear();
  } catch (const std::exception& e) {
    detail::log().debug("ephemeral postgres: preparing a spare cluster: {}", e.what());
  }
  if (!in_progress.empty()) {
    std::error_code ignored;
    fs::remove_all(in_progress, ignored);
  }
}

// Removes a cached image that failed to start, and the spares copied from it.
void discard_image(const fs::path& cache, const fs::path& image, const fs::path& spares,
                   std::chrono::steady_clock::time_point deadline) {
  FileLock exclusive(cache / "lock", LOCK_EX, deadline);
  if (!exclusive.locked()) return;
  std::error_code ignored;
  const fs::path trash = cache / ("staging-" + random_suffix());
  fs::rename(image, trash, ignored);
  fs::remove_all(trash, ignored);
  fs::remove_all(spares, ignored);
}

// --- server directory lifecycle ---------------------------------------------------

std::optional<long> postmaster_pid(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  long pid = 0;
  if (in >> pid && pid > 0) return pid;
  return std::nullopt;
}

// The owner of the data directory, when this process must switch to it.
std::optional<Identity> data_owner(const fs::path& data) {
  struct stat info {};
  if (::geteuid() != 0 || ::stat(data.c_str(), &info) != 0 || info.st_uid == 0) {
    return std::nullopt;
  }
  return Identity{info.st_uid, info.st_gid};
}

// Stops the server of `directory` if one runs. False if it may still run.
bool stop_server(const fs::path& directory, const std::string& bindir) {
  const fs::path data = directory / "data";
  if (!fs::exists(data / "postmaster.pid")) return true;
  detail::CommandOptions options;
  options.run_as = data_owner(data);
  detail::CommandResult result = detail::run_command(
      {bindir + "/pg_ctl", "-D", data.string(), "-m", "immediate", "-w", "-t", "30", "-s", "stop"},
      options);
  if (result.ok()) return true;
  // A stale postmaster.pid (the server already died) is fine: nothing runs.
  if (auto pid = postmaster_pid(data)) {
    char link[4096] = {};
    std::string cwd_link = fmt::format("/proc/{}/cwd", *pid);
    ssize_t length = ::readlink(cwd_link.c_str(), link, sizeof link - 1);
    bool alive = ::kill(static_cast<pid_t>(*pid), 0) == 0 || errno != ESRCH;
    std::error_code ignored;
    bool ours = length > 0 && fs::path(std::string(link, static_cast<std::size_t>(length))) ==
                                  fs::weakly_canonical(data, ignored);
    if (!alive || (length > 0 && !ours)) return true;
  } else {
    return true;
  }
  detail::log().error("ephemeral postgres: pg_ctl stop failed for {} ({}): {}", directory.string(),
                      result.describe(), trim(result.output));
  return false;
}

// Stops the server, then deletes the directory, the marker last, if `owner` accepts its marker
// (marked::drop_if_owned). Returns false (and keeps the directory with its marker for the next
// reaper) if the server could not be stopped.
bool stop_and_remove(const fs::path& directory, const std::string& bindir,
                     const marked::Owner& owner) {
  bool stopped = false;
  try {
    stopped = stop_server(directory, bindir);
  } catch (const std::exception& e) {
    detail::log().error("ephemeral postgres: stopping {}: {}", directory.string(), e.what());
  }
  if (!stopped) return false;
  try {
    if (!marked::drop_if_owned(directory, owner)) {
      detail::log().warn("ephemeral postgres: not deleting {}: its marker is not its owner's",
                         directory.string());
    }
  } catch (const std::exception& e) {
    detail::log().warn("ephemeral postgres: could not delete {}: {}", directory.string(), e.what());
  }
  return true;
}

std::string quote_setting(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

void validate_settings(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [name, value] : settings) {
    bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
    });
    if (!valid_name) configuration_error(fmt::format("invalid PostgreSQL setting name '{}'", name));
    if (value.find_first_of("\n\r") != std::string::npos) {
      configuration_error(fmt::format("the value of PostgreSQL setting '{}' spans lines", name));
    }
  }
}

void append_configuration(const fs::path& directory, const EphemeralPostgresOptions& options) {
  std::ofstream conf(directory / "data" / "postgresql.conf", std::ios::app);
  conf << "\n# gamebot ephemeral server\n"
       << "listen_addresses = ''\n"
       << "unix_socket_directories = " << quote_setting(directory.string()) << "\n"
       << "port = " << kPort << "\n"
       << "fsync = off\n"
       << "synchronous_commit = off\n"
       << "full_page_writes = off\n";
  for (const auto& [name, value] : options.settings) {
    conf << name << " = " << quote_setting(value) << "\n";
  }
  conf.flush();
  if (!conf) {
    provisioning_error(fmt::format("cannot write {}/data/postgresql.conf", directory.string()));
  }
}

std::vector<fs::path> reap_in(const fs::path& base_dir, std::chrono::seconds grace,
                              std::string bindir) {
  std::vector<fs::path> reaped;
  try {
    const fs::path base = base_dir.empty() ? default_temp_dir() : base_dir;
    const std::string host = this_host_name();
    const auto now = std::chrono::system_clock::now();
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(base, error)) {
      const fs::path& directory = entry.path();
      if (directory.filename().string().starts_with(kSparesPrefix)) {
        if (drop_stale_spares(directory)) reaped.push_back(directory);
        continue;
      }
      if (!directory.filename().string().starts_with(EphemeralPostgres::kDirectoryPrefix)) continue;
      const fs::path marker_path = directory / EphemeralPostgres::kMarkerFile;
      struct stat dir_info = {};
      struct stat marker_info = {};
      if (::lstat(directory.c_str(), &dir_info) != 0 || !S_ISDIR(dir_info.st_mode)) continue;
      // The marker is written by the creating process: it names the owner user.
      if (::lstat(marker_path.c_str(), &marker_info) != 0 || !S_ISREG(marker_info.st_mode) ||
          marker_info.st_uid != ::geteuid()) {
        continue;
      }
      std::optional<RunMarker> marker;
      try {
        marker = read_marker_file(marker_path);
      } catch (const Error& e) {
        detail::log().warn("ephemeral postgres: not reaping {}: {}", directory.string(), e.what());
        continue;
      }
      if (!marker || marker->resource != kResource || !is_orphan(*marker, now, grace, host)) {
        continue;
      }
      try {
        if (bindir.empty()) bindir = EphemeralPostgres::find_bindir();
      } catch (const Error& e) {
        detail::log().warn("ephemeral postgres: cannot reap {}: {}", directory.string(), e.what());
        continue;
      }
      detail::log().info("reaping orphaned ephemeral PostgreSQL {} (owner pid {} on {}, run {})",
                         directory.string(), marker->pid, marker->host, marker->run_id);
      const RunMarker listed = *marker;
      if (stop_and_remove(directory, bindir,
                          [&listed](const RunMarker& now) { return now == listed; }))
        reaped.push_back(directory);
    }
  } catch (const std::exception& e) {
    detail::log().error("ephemeral postgres: reaping in {}: {}", base_dir.string(), e.what());
  }
  return reaped;
}

}  // namespace

// ---------------------------------------------------------------------------------

struct EphemeralPostgres::Impl {
  EphemeralPostgresOptions options;
  std::string bindir;
  std::string version;
  std::optional<Identity> owner;
  fs::path base;  // parent of the server directory (and of the spares)
  fs::path directory;
  EphemeralPostgresTimings timings;
  std::shared_ptr<std::atomic<bool>> running = std::make_shared<std::atomic<bool>>(false);
  std::optional<fs::path> cache;  // the usable cache root, if any
  // Held (exclusive) when this start builds the cached image in the background.
  std::shared_ptr<FileLock> image_build_lock;
  std::thread background;      // builds the image and/or prepares spare clusters
  pid_t background_owner = 0;  // a forked child must not join its parent's thread
  std::unique_ptr<TeardownRegistry> private_teardown;  // when !options.register_teardown
  TeardownHandle teardown;                             // stops and deletes; declared last

  ~Impl() { join_background(); }

  // Waits for the background work: it may use the server directory.
  void join_background() noexcept {
    if (!background.joinable()) return;
    if (background_owner == ::getpid()) {
      background.join();
    } else {
      background.detach();
    }
  }

  void start();
  void prepare_cluster(bool allow_cache);
  std::chrono::nanoseconds run_initdb(const fs::path& target) const;
  void build_image(const fs::path& image) const noexcept;
  void start_background_work();
  bool start_server(std::string& failure);
  fs::path data() const { return directory / "data"; }
  int commands_log() const;
};

int EphemeralPostgres::Impl::commands_log() const {
  return ::open((directory / "commands.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                0600);
}

std::chrono::nanoseconds EphemeralPostgres::Impl::run_initdb(const fs::path& target) const {
  Fd log(commands_log());
  detail::CommandOptions command;
  command.run_as = owner;
  command.output_fd = log.get();
  const auto begin = Clock::now();
  detail::CommandResult result =
      detail::run_command({bindir + "/initdb", "-D", target.string(), "-U", options.superuser, "-A",
                           "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"},
                          command);
  if (!result.ok()) {
    provisioning_error(fmt::format("initdb failed ({}) in {}:{}", result.describe(),
                                   directory.string(), tail_of(directory / "commands.log", 15)));
  }
  return Clock::now() - begin;
}

void EphemeralPostgres::Impl::build_image(const fs::path& image) const noexcept {
  const fs::path build_dir = directory / "image-build";
  fs::path staging;
  std::error_code error;
  try {
    if (::mkdir(build_dir.c_str(), 0700) != 0 ||
        (owner && ::chown(build_dir.c_str(), owner->uid, owner->gid) != 0)) {
      provisioning_error(fmt::format("cannot create {}: {}", build_dir.string(), errno_text()));
    }
    run_initdb(build_dir / "data");
    for (const auto& entry : fs::directory_iterator(image.parent_path(), error)) {
      if (entry.path().filename().string().starts_with("staging-")) {
        std::error_code ignored;
        fs::remove_all(entry.path(), ignored);  // left by a builder that died
      }
    }
    staging = image.parent_path() / ("staging-" + random_suffix());
    copy_tree(build_dir / "data", staging, std::nullopt, true);
    fs::rename(staging, image);
    staging.clear();
  } catch (const std::exception& e) {
    detail::log().warn("ephemeral postgres: could not store the cluster image in {}: {}",
                       image.parent_path().string(), e.what());
  }
  if (!staging.empty()) fs::remove_all(staging, error);
  fs::remove_all(build_dir, error);
}

void EphemeralPostgres::Impl::start_background_work() {
  if (!cache) return;
  const fs::path image = image_path(*cache, options.superuser);
  std::shared_ptr<FileLock> build_lock = std::move(image_build_lock);
  if (!build_lock && options.spare_clusters <= 0) return;
  auto work = [this, build_lock, image, spares = spares_path(base, image, owner),
               lock_path = *cache / "lock", count = options.spare_clusters]() mutable noexcept {
    if (build_lock) {
      build_image(image);
      build_lock.reset();  // before replenishing, which takes the lock shared
    }
    if (count > 0) replenish_spares(image, spares, owner, count, lock_path);
  };
  try {
    background = std::thread(std::move(work));
    background_owner = ::getpid();
  } catch (const std::system_error& e) {
    detail::log().warn("ephemeral postgres: no background thread for the image cache: {}",
                       e.what());
  }
}

// The cluster for this server: a spare, a copy of the cached image, or a
// fresh initdb. Without an image, the first start to get the cache lock runs
// initdb for itself and builds the image with a second initdb in the
// background after its server is up, so even the first start waits only for
// initdb + pg_ctl start.
void EphemeralPostgres::Impl::prepare_cluster(bool allow_cache) {
  cache.reset();
  if (allow_cache && options.use_cache) cache = usable_cache_root(options, version);
  if (!cache) {
    timings.initdb += run_initdb(data());
    return;
  }
  const fs::path image = image_path(*cache, options.superuser);
  if (options.spare_clusters > 0) {
    const auto begin = Clock::now();
    if (claim_spare(spares_path(base, image, owner), data())) {
      timings.copy += Clock::now() - begin;
      timings.from_cache = true;
      timings.from_spare = true;
      return;
    }
  }
  const fs::path lock_path = *cache / "lock";
  auto copy_image = [&] {
    const auto begin = Clock::now();
    copy_tree(image, data(), owner, false);
    timings.copy += Clock::now() - begin;
    timings.from_cache = true;
  };
  {
    FileLock shared(lock_path, LOCK_SH, Clock::now() + options.start_timeout);
    if (shared.locked() && fs::exists(image / "PG_VERSION")) {
      copy_image();
      return;
    }
  }
  // Whoever gets the lock at once builds the image; the others do not wait.
  auto exclusive = std::make_shared<FileLock>(lock_path, LOCK_EX, Clock::now());
  if (exclusive->locked() && fs::exists(image / "PG_VERSION")) {
    copy_image();  // another process built it meanwhile
    return;
  }
  timings.initdb += run_initdb(data());
  if (exclusive->locked()) image_build_lock = std::move(exclusive);
}

bool EphemeralPostgres::Impl::start_server(std::string& failure) {
  Fd log(commands_log());
  detail::CommandOptions command;
  command.run_as = owner;
  command.output_fd = log.get();
  const auto begin = Clock::now();
  detail::CommandResult result = detail::run_command(
      {bindir + "/pg_ctl", "-D", data().string(), "-l", (directory / "server.log").string(), "-w",
       "-t", std::to_string(options.start_timeout.count()), "-s", "start"},
      command);
  timings.start += Clock::now() - begin;
  if (result.ok()) return true;
  failure =
      fmt::format("pg_ctl start failed ({}) in {}:{}{}", result.describe(), directory.string(),
                  tail_of(directory / "commands.log", 10), tail_of(directory / "server.log", 15));
  return false;
}

void EphemeralPostgres::Impl::start() {
  const auto begin = Clock::now();
  validate_settings(options.settings);
  bindir = find_bindir(options.bindir);
  version = server_version(bindir);
  owner = server_identity(options.run_as_user);
  base = options.base_dir.empty() ? default_temp_dir() : options.base_dir;
  std::error_code error;
  if (!fs::is_directory(base, error)) {
    configuration_error(fmt::format("base_dir {} is not a directory", base.string()));
  }
  if (owner) check_traversable(base, *owner, options.run_as_user);
  if (options.reap_orphans) reap_in(base, options.orphan_grace, bindir);

  // + 6: the random suffix mkdtemp adds.
  const std::size_t directory_length = (base / kDirectoryPrefix).string().size() + 6;
  if (directory_length + std::string_view("/.s.PGSQL.5432").size() > kUnixSocketPathMax) {
    configuration_error(fmt::format(
        "base_dir {} is too long for a unix socket path (at most {} bytes in all); use a "
        "shorter one",
        base.string(), kUnixSocketPathMax));
  }
  directory = detail::make_private_directory(base, kDirectoryPrefix);
  // The marker first: from here on a crash leaves something the reaper finds.
  std::string run_id = options.run_id.empty() ? RunId::generate().str() : options.run_id;
  try {
    marked::mark(directory, RunMarker::for_this_process(run_id, std::string(kResource)));
  } catch (...) {
    fs::remove_all(directory, error);
    throw;
  }
  auto action = [directory = directory, bindir = bindir, running = running, run_id] {
    if (stop_and_remove(directory, bindir, marked::owned_by_run(run_id))) running->store(false);
  };
  if (options.register_teardown) {
    install_process_teardown_hooks();
    teardown = process_teardown().add("ephemeral PostgreSQL " + directory.string(), action);
  } else {
    private_teardown = std::make_unique<TeardownRegistry>();
    teardown = private_teardown->add("ephemeral PostgreSQL " + directory.string(), action);
  }
  try {
    if (owner && ::chown(directory.c_str(), owner->uid, owner->gid) != 0) {
      provisioning_error(fmt::format("cannot chown {}: {}", directory.string(), errno_text()));
    }
    prepare_cluster(true);
    append_configuration(directory, options);
    running->store(true);
    std::string failure;
    if (!start_server(failure)) {
      if (!timings.from_cache) provisioning_error(failure);
      // A damaged image must not fail every later run: rebuild it once.
      detail::log().warn("ephemeral postgres: start from the cached image failed; rebuilding it");
      stop_server(directory, bindir);
      image_build_lock.reset();
      if (cache) {
        const fs::path image = image_path(*cache, options.superuser);
        discard_image(*cache, image, spares_path(base, image, owner),
                      Clock::now() + options.start_timeout);
      }
      fs::remove_all(data(), error);
      timings.from_cache = false;
      timings.from_spare = false;
      prepare_cluster(true);
      append_configuration(directory, options);
      if (!start_server(failure)) provisioning_error(failure);
    }
  } catch (...) {
    teardown.run_now();
    throw;
  }
  timings.total = Clock::now() - begin;
  start_background_work();
  auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  detail::log().info(
      "ephemeral PostgreSQL {} ready in {:.0f} ms ({}; initdb {:.0f} ms, copy {:.0f} ms, start "
      "{:.0f} ms) at {}",
      version, ms(timings.total),
      timings.from_spare   ? "a spare of the cached image"
      : timings.from_cache ? "copied from the cached image"
                           : "initdb",
      ms(timings.initdb), ms(timings.copy), ms(timings.start), directory.string());
}

EphemeralPostgres::EphemeralPostgres(EphemeralPostgresOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->start();
}

EphemeralPostgres::~EphemeralPostgres() {
  stop();
}

EphemeralPostgres::EphemeralPostgres(EphemeralPostgres&&) noexcept = default;

EphemeralPostgres& EphemeralPostgres::operator=(EphemeralPostgres&& other) noexcept {
  if (this != &other) {
    stop();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

std::string EphemeralPostgres::url(std::string_view database) const {
  return repo::DatabaseUrl::parse("postgresql://")
      .with_parameter("user", impl_->options.superuser)
      .with_parameter("host", impl_->directory.string())
      .with_parameter("port", std::to_string(kPort))
      .with_database(std::string(database))
      .redacted();  // no password: the canonical text
}

const fs::path& EphemeralPostgres::directory() const noexcept {
  return impl_->directory;
}
fs::path EphemeralPostgres::socket_dir() const {
  return impl_->directory;
}
fs::path EphemeralPostgres::data_dir() const {
  return impl_->data();
}
int EphemeralPostgres::port() const noexcept {
  return kPort;
}
const std::string& EphemeralPostgres::superuser() const noexcept {
  return impl_->options.superuser;
}
const EphemeralPostgresTimings& EphemeralPostgres::timings() const noexcept {
  return impl_->timings;
}
bool EphemeralPostgres::running() const noexcept {
  return impl_ && impl_->running->load();
}

void EphemeralPostgres::finish_background_work() noexcept {
  if (impl_) impl_->join_background();
}

void EphemeralPostgres::stop() noexcept {
  if (!impl_) return;
  impl_->join_background();  // it may be writing inside the server directory
  impl_->teardown.run_now();
}

void EphemeralPostgres::keep() {
  if (!impl_) return;
  impl_->join_background();
  // The marker this process wrote when it made the directory.
  const long pid = static_cast<long>(::getpid());
  const std::string host = this_host_name();
  const marked::Owner mine = [&](const RunMarker& marker) {
    return marker.pid == pid && marker.host == host;
  };
  if (!marked::keep(impl_->directory, mine)) {
    throw Error(FaultClass::provisioning,
                fmt::format("cannot keep {}: its marker is not ours", impl_->directory.string()));
  }
  impl_->teardown.dismiss();
}

bool EphemeralPostgres::remove_kept(const fs::path& directory) {
  std::optional<RunMarker> marker;
  try {
    struct stat marker_info = {};
    const fs::path marker_path = directory / kMarkerFile;
    if (::lstat(marker_path.c_str(), &marker_info) != 0 || !S_ISREG(marker_info.st_mode) ||
        marker_info.st_uid != ::geteuid())
      return false;
    marker = marked::marker_of(directory);
  } catch (const std::exception& e) {
    detail::log().warn("ephemeral postgres: not removing {}: {}", directory.string(), e.what());
    return false;
  }
  if (!marker || !marker->kept || marker->resource != kResource) return false;
  const RunMarker listed = *marker;
  try {
    return stop_and_remove(directory, find_bindir(),
                           [&listed](const RunMarker& now) { return now == listed; });
  } catch (const std::exception& e) {
    detail::log().warn("ephemeral postgres: cannot remove {}: {}", directory.string(), e.what());
    return false;
  }
}

std::string EphemeralPostgres::find_bindir(const std::string& override_bindir) {
  if (!override_bindir.empty()) {
    if (has_server_binaries(override_bindir)) return override_bindir;
    configuration_error(fmt::format(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in {}; install the "
        "Debian package 'postgresql' (apt-get install postgresql) or fix the bindir option",
        override_bindir));
  }
  static std::mutex mutex;
  static std::string found;
  std::lock_guard lock(mutex);
  if (!found.empty()) return found;
  detail::CommandOptions command;
  command.search_path = true;
  detail::CommandResult result = detail::run_command({"pg_config", "--bindir"}, command);
  if (result.ok()) {
    std::string candidate = trim(result.output);
    if (!candidate.empty() && has_server_binaries(candidate)) return found = candidate;
  }
  std::vector<std::pair<int, fs::path>> versions;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    const std::string name = entry.path().filename().string();
    int major = std::atoi(name.c_str());
    if (major > 0 && has_server_binaries(entry.path() / "bin")) {
      versions.emplace_back(major, entry.path() / "bin");
    }
  }
  if (!versions.empty()) {
    std::sort(versions.begin(), versions.end());
    return found = versions.back().second.string();
  }
  configuration_error(
      "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via `pg_config --bindir` "
      "or /usr/lib/postgresql/*/bin; install the Debian package 'postgresql' (apt-get install "
      "postgresql)");
}

fs::path EphemeralPostgres::default_base_dir() {
  return default_temp_dir();
}

fs::path EphemeralPostgres::cached_image_path(const EphemeralPostgresOptions& options) {
  const std::string version = server_version(find_bindir(options.bindir));
  auto cache = usable_cache_root(options, version);
  return cache ? image_path(*cache, options.superuser) : fs::path();
}

std::vector<fs::path> EphemeralPostgres::reap_orphans(const fs::path& base_dir,
                                                      std::chrono::seconds grace) {
  return reap_in(base_dir, grace, {});
}

}  // namespace gamebot::harness
