#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gamebot/harness/options.hpp"

namespace gamebot::harness {

// Identifies one test run: UTC start time, owner pid and 32 random bits, as
// `20250102t030405_p12345_0a1b2c3d` — lower-case letters, digits and '_' only,
// at most 33 characters, so it is safe in file names and unquoted SQL
// identifiers. Regular value type.
class RunId {
 public:
  // A new id for this process now. Thread-safe.
  static RunId generate();
  // The id of the given parts (deterministic; for tests and parsing).
  static RunId from_parts(std::chrono::system_clock::time_point start, long pid,
                          std::uint32_t random);
  // Parses the text form; nullopt if it is not one.
  static std::optional<RunId> parse(std::string_view text);

  const std::string& str() const noexcept { return text_; }
  // The start time (second resolution) and pid encoded in the id.
  std::chrono::system_clock::time_point start_time() const noexcept { return start_; }
  long pid() const noexcept { return pid_; }

  friend bool operator==(const RunId& a, const RunId& b) noexcept { return a.text_ == b.text_; }

 private:
  RunId() = default;
  std::string text_;
  std::chrono::system_clock::time_point start_{};
  long pid_ = 0;
};

// Environment variables that tie processes together when a suite is split
// across processes (ctest -j, several machines): a shared run id, and this
// process's worker name within it.
inline constexpr std::string_view kEnvRunId = "GAMEBOT_TEST_RUN_ID";
inline constexpr std::string_view kEnvWorker = "GAMEBOT_TEST_WORKER";

// The run and worker this process belongs to.
struct RunIdentity {
  RunId run_id = RunId::generate();  // the run
  std::string worker;                // empty: the process is the whole run
  bool shared_run = false;           // the run id came from GAMEBOT_TEST_RUN_ID
};

// Detects the identity: run id from GAMEBOT_TEST_RUN_ID (shared by the
// processes of one split run) or a new one; worker from GAMEBOT_TEST_WORKER
// (1-12 letters/digits, lower-cased), else "p<pid>" when the run id is shared
// (so workers never collide), else none. Throws gamebot::Error(configuration)
// naming the variable for a malformed value. Thread-safe.
RunIdentity detect_run_identity(const EnvGetter& env);

// Prefix of every database, schema or directory the harness creates.
inline constexpr std::string_view kTestDatabasePrefix = "gamebot_test_";

// `gamebot_test_<runid>` or `gamebot_test_<runid>_w<worker>`: at most 60
// characters of [a-z0-9_], a valid unquoted PostgreSQL identifier.
std::string test_database_name(const RunIdentity& identity);

// Prefix of the per-test clones of the run database `run_database` (a name made by
// test_database_name()): `gamebot_test_<8 hex of a hash of the name>[_w<worker>]_c`, followed by
// a number; at most 40 characters. Derived from the run database's name so that the reaper of
// an orphaned run database also finds its clones, and carrying the worker so each worker's
// names are its own and say whose they are.
std::string clone_database_prefix(std::string_view run_database);

// The identity encoded in a name made by test_database_name(); nullopt for any
// other name (the harness never touches those).
std::optional<RunIdentity> parse_test_database_name(std::string_view name);

}  // namespace gamebot::harness
