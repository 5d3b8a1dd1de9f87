#include "private_directory.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "gamebot/core/error.hpp"

namespace gamebot::harness::detail {
namespace fs = std::filesystem;

namespace {

constexpr mode_t kPrivateDirectoryMode = 0700;
constexpr mode_t kPrivateFileMode = 0600;

}  // namespace

std::string private_directory_problem(const fs::path& dir) {
  struct stat info {};
  if (::lstat(dir.c_str(), &info) != 0)
    return fmt::format("cannot stat it: {}", std::strerror(errno));
  if (S_ISLNK(info.st_mode)) return "it is a symbolic link";
  if (!S_ISDIR(info.st_mode)) return "it is not a directory";
  if (info.st_uid != ::geteuid()) {
    return fmt::format("it is owned by uid {}, not by this user (uid {})",
                       static_cast<unsigned long>(info.st_uid),
                       static_cast<unsigned long>(::geteuid()));
  }
  if ((info.st_mode & 0777) != kPrivateDirectoryMode) {
    return fmt::format("its mode is {:04o}, not 0700", static_cast<unsigned>(info.st_mode & 0777));
  }
  return {};
}

bool is_private_directory(const fs::path& dir) {
  return private_directory_problem(dir).empty();
}

void ensure_private_directory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), kPrivateDirectoryMode) != 0 && errno != EEXIST) {
    throw Error(FaultClass::configuration, fmt::format("cannot create the directory {}: {}",
                                                       dir.string(), std::strerror(errno)));
  }
  if (std::string problem = private_directory_problem(dir); !problem.empty()) {
    throw Error(
        FaultClass::configuration,
        fmt::format("{} is not a private directory of this user: {}", dir.string(), problem));
  }
}

fs::path make_private_directory(const fs::path& parent, std::string_view prefix) {
  std::string pattern = (parent / prefix).string() + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(FaultClass::configuration, fmt::format("cannot create a directory in {}: {}",
                                                       parent.string(), std::strerror(errno)));
  }
  return pattern;
}

void create_private_file(const fs::path& path) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) {
    throw Error(FaultClass::provisioning,
                fmt::format("cannot create the file {}: {}", path.string(), std::strerror(errno)));
  }
  ::close(fd);
}

void replace_private_file(const fs::path& path, std::string_view content) {
  fs::path temporary = path;
  temporary += ".tmp" + std::to_string(::getpid());
  std::error_code ignored;
  fs::remove(temporary, ignored);
  create_private_file(temporary);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << content;
    if (!out.flush()) {
      fs::remove(temporary, ignored);
      throw Error(FaultClass::provisioning, "cannot write the file " + temporary.string());
    }
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) {
    fs::remove(temporary, ignored);
    throw Error(FaultClass::provisioning,
                fmt::format("cannot replace the file {}: {}", path.string(), ec.message()));
  }
}

}  // namespace gamebot::harness::detail
