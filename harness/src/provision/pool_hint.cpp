#include "provision/pool_hint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "gamebot/harness/caches.hpp"
#include "gamebot/repo/migrator.hpp"
#include "private_directory.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness::provision {

namespace {

constexpr std::size_t kMaxName = 63;     // PostgreSQL's NAMEDATALEN - 1
constexpr std::size_t kRecordSize = 64;  // a name and its newline, padded with newlines

fs::path hint_file(const std::string& server, const std::string& pool) {
  // The repo's SHA-256 (named for migrations, but a plain hex digest of any text).
  const std::string key = repo::Migrator::checksum(server + "\n" + pool).substr(0, 32);
  return caches::pool_hints(caches::temporary_directory()) / key;
}

}  // namespace

std::optional<std::string> last_released_pooled(const std::string& server,
                                                const std::string& pool) noexcept {
  try {
    const fs::path file = hint_file(server, pool);
    if (!detail::is_private_directory(file.parent_path())) return std::nullopt;
    std::ifstream in(file);
    std::string name;
    if (!std::getline(in, name) || name.empty() || name.size() > kMaxName) return std::nullopt;
    return name;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void remember_released_pooled(const std::string& server, const std::string& pool,
                              const std::string& database) noexcept {
  try {
    const fs::path file = hint_file(server, pool);
    detail::ensure_private_directory(file.parent_path());
    // Overwritten in place as a record of fixed size: no rename and no truncation, either of
    // which makes ext4 start writing the file back at once (~3 ms on the process's exit path
    // here). A reader may see a torn record; the caller checks the name it reads.
    std::string record = database;
    record.resize(std::max(record.size() + 1, kRecordSize), '\n');
    int fd = ::open(file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      detail::create_private_file(file);
      fd = ::open(file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return;
    [[maybe_unused]] const ssize_t written = ::pwrite(fd, record.data(), record.size(), 0);
    ::close(fd);
  } catch (const std::exception&) {
    // Not remembered: the next process does without a guess.
  }
}

}  // namespace gamebot::harness::provision
