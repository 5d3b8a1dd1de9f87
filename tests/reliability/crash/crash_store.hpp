#pragma once

// The store a crash test runs against, chosen at compile time (GAMEBOT_CRASH_BACKEND): a SQLite
// file in a temporary directory, or a fresh schema on the CTest fixture's PostgreSQL server.
// Either way dir() is a private temporary directory for the writer's output.

#include <filesystem>
#include <string>

#include "gamebot/testing/postgres.hpp"
#ifdef GAMEBOT_CRASH_POSTGRES
#include "test_schema.hpp"
#endif

namespace gamebot::reliability {

class CrashStore {
 public:
  std::filesystem::path dir() const { return temp_.path(); }
#ifdef GAMEBOT_CRASH_POSTGRES
  std::string url() const {
    return schema_.store_url();
  }
#else
  std::string url() const {
    return "sqlite:" + (dir() / "store.db").string();
  }
#endif

 private:
  gamebot::testing::TempDir temp_;
#ifdef GAMEBOT_CRASH_POSTGRES
  gamebot::eventstore::testing::TestSchema schema_{"crash"};
#endif
};

}  // namespace gamebot::reliability
