#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gamebot/core/uuid.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::testing {

std::string postgres_socket_dir() {
  const char* dir = std::getenv("GAMEBOT_TEST_PG_DIR");
  if (dir == nullptr || *dir == '\0') {
    throw std::runtime_error(
        "postgres test without a server: GAMEBOT_TEST_PG_DIR is not set (run through ctest, "
        "whose 'postgres' fixture starts the server, or set GAMEBOT_TEST_PG_URL)");
  }
  return dir;
}

std::string postgres_url(const std::string& database) {
  if (const char* url = std::getenv("GAMEBOT_TEST_PG_URL"); url != nullptr && *url != '\0') {
    return url;
  }
  return "postgresql://postgres@/" + database + "?host=" + postgres_socket_dir();
}

std::string postgres_password_url(const std::string& password, const std::string& database) {
  std::string dir = postgres_socket_dir();
  std::string secret = password;
  if (secret.empty()) {
    std::ifstream in(dir + "/password");
    if (!in) throw std::runtime_error("cannot read the test server's password file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    secret = buffer.str();
  }
  return "postgresql://gamebot_pw:" + secret + "@/" + database + "?host=" + dir;
}

TempDir::TempDir() {
  auto base = std::filesystem::temp_directory_path() / ("gamebot-test-" + Uuid::v4().to_string());
  std::filesystem::create_directory(base);
  std::filesystem::permissions(base, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace);
  path_ = base.string();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace gamebot::testing
