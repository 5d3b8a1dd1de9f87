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
  const char* server = std::getenv("GAMEBOT_TEST_PG_URL");
  if (server == nullptr || *server == '\0') {
    return "postgresql://postgres@/" + database + "?host=" + postgres_socket_dir();
  }
  // The URL names a server; the database is always the test's. One naming a database is
  // refused: a test would act on it (create, drop) whatever database it meant.
  const std::string url = server;
  const std::size_t query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string parameters = query == std::string::npos ? "" : url.substr(query);
  const std::size_t scheme = base.find("://");
  const std::size_t path =
      scheme == std::string::npos ? std::string::npos : base.find('/', scheme + 3);
  const bool names_database = (path != std::string::npos && path + 1 < base.size()) ||
                              parameters.find("dbname=") != std::string::npos;
  if (scheme == std::string::npos || names_database) {
    throw std::runtime_error(
        "GAMEBOT_TEST_PG_URL must name a server and no database (postgresql://USER@HOST:PORT or "
        "postgresql://USER@/?host=DIR): each test chooses its database");
  }
  return base.substr(0, path) + "/" + database + parameters;
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

std::string pgbouncer_url(const std::string& database) {
  if (const char* server = std::getenv("GAMEBOT_TEST_PG_URL"); server != nullptr && *server) {
    throw std::runtime_error(
        "PgBouncer test on an external server (GAMEBOT_TEST_PG_URL): the 'pgbouncer' fixture "
        "runs only in front of the server the 'postgres' fixture starts");
  }
  return "postgresql://postgres@/" + database + "?host=" + postgres_socket_dir() +
         "-pgbouncer&port=6432";
}

std::string replica_url(const std::string& database) {
  if (const char* server = std::getenv("GAMEBOT_TEST_PG_URL"); server != nullptr && *server) {
    throw std::runtime_error(
        "replica test on an external server (GAMEBOT_TEST_PG_URL): the 'pg-replica' fixture "
        "replicates only the server the 'postgres' fixture starts");
  }
  return "postgresql://postgres@/" + database + "?host=" + postgres_socket_dir() + "-replica";
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
