#pragma once

#include <string>

namespace gamebot::testing {

// Connection URL of `database` (superuser "postgres", trusted on the unix socket) on
// the test server that the CTest fixture "postgres" started. Reads
// GAMEBOT_TEST_PG_URL if set (a server URL naming no database: one that names a
// database, or is not a URL, throws std::runtime_error), else GAMEBOT_TEST_PG_DIR.
// Throws std::runtime_error if neither is set: a postgres test never passes by
// skipping.
std::string postgres_url(const std::string& database = "postgres");

// URL of the password-protected role "gamebot_pw" with the given password
// (empty: the right one, read from the server directory).
std::string postgres_password_url(const std::string& password = {},
                                  const std::string& database = "postgres");

// The socket directory of the test server (GAMEBOT_TEST_PG_DIR).
std::string postgres_socket_dir();

// Connection URL of `database` (user "postgres") through the PgBouncer in
// transaction pooling mode that the CTest fixture "pgbouncer" started in front
// of the test server (scripts/pgbouncer-test-server on the unix socket
// directory "<GAMEBOT_TEST_PG_DIR>-pgbouncer", port 6432). The URL says nothing
// of the pooling: callers add the store's pooling=transaction where they mean
// it. Throws std::runtime_error where postgres_socket_dir() does, and with
// GAMEBOT_TEST_PG_URL (the fixture runs only beside its own server).
std::string pgbouncer_url(const std::string& database = "postgres");

// Connection URL of `database` (user "postgres") on the streaming hot-standby
// replica of the test server that the CTest fixture "pg-replica" started
// (scripts/pg-replica-test-server on the unix socket directory
// "<GAMEBOT_TEST_PG_DIR>-replica"). Read-only, and behind the server by its
// replay lag. Throws std::runtime_error where postgres_socket_dir() does, and
// with GAMEBOT_TEST_PG_URL (the fixture runs only beside its own server).
std::string replica_url(const std::string& database = "postgres");

// A fresh, empty, private (0700) directory under the system temp dir,
// removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace gamebot::testing
