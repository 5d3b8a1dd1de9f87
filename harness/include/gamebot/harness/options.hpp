#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/harness/logging.hpp"
#include "gamebot/repo/database_url.hpp"

namespace gamebot::harness {

// The store the tests run on.
enum class Backend { memory, sqlite, postgres };

// How each test is isolated from the others.
enum class Isolation {
  transaction,  // one pinned connection in a transaction rolled back after the test
  schema,       // a fresh schema per test (PostgreSQL only)
  database,     // a fresh database (a template clone, a fresh SQLite file) per test
  none,         // the tests share the run's database
};

std::string_view to_string(Backend backend) noexcept;
std::string_view to_string(Isolation isolation) noexcept;

// Parse the option spellings above; throw gamebot::Error(configuration) naming
// `option_name` and listing the accepted values.
Backend parse_backend(std::string_view text, std::string_view option_name = "--backend");
Isolation parse_isolation(std::string_view text, std::string_view option_name = "--isolation");

// The resolved configuration of a test run.
struct HarnessOptions {
  Backend backend = Backend::sqlite;                   // store the tests run on
  std::optional<repo::DatabaseUrl> database_url;       // parsed; nullopt: the harness provides one
  Isolation isolation = Isolation::transaction;        // per-test isolation strategy
  bool keep = false;                                   // keep the run's databases for inspection
  std::string report_path;                             // empty: no JSON run report
  std::chrono::milliseconds connect_deadline{30'000};  // overall connectivity deadline
  LogLevel log_level = LogLevel::info;                 // harness log verbosity
  // PostgreSQL: most connections the harness has open at once in this process (admin, lease,
  // pools, clone preparers and releaser, listeners, schema check); the pools and the number of
  // preparers are sized to fit. 12: a process of a one-process-per-test suite needs at most 5
  // with transaction isolation and 11-12 with database/schema isolation keeping one database
  // ready, so a server's default 100 slots serve 8 such processes at once, and a small one
  // (20) two, taking turns (no process holds some while waiting for more).
  std::size_t max_connections = 12;
};

// One line describing the options, the URL redacted. Safe to log.
std::string describe(const HarnessOptions& options);

// The raw text of each harness option as given on a command line or in the environment, before
// validation; unset means "not given". extract_options() fills it from argv (through
// harness_flags()); resolve_options() turns it into HarnessOptions.
struct OptionInputs {
  std::optional<std::string> backend;           // --backend
  std::optional<std::string> database_url;      // --database-url
  std::optional<std::string> isolation;         // --isolation
  std::optional<std::string> keep;              // --keep ("true" when given bare)
  std::optional<std::string> report_path;       // --report
  std::optional<std::string> connect_deadline;  // --connect-deadline (seconds)
  std::optional<std::string> log_level;         // --log-level
  std::optional<std::string> max_connections;   // --max-connections
};

// Reads an environment variable; nullopt when unset. An empty value counts as unset.
using EnvGetter = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (std::getenv). Not thread-safe against setenv.
EnvGetter process_environment();

// An environment made of the given pairs (for tests and embedding).
EnvGetter fixed_environment(std::vector<std::pair<std::string, std::string>> variables);

// Environment variable names, one per option.
inline constexpr std::string_view kEnvBackend = "GAMEBOT_TEST_BACKEND";
inline constexpr std::string_view kEnvDatabaseUrl = "GAMEBOT_TEST_DATABASE_URL";
inline constexpr std::string_view kEnvIsolation = "GAMEBOT_TEST_ISOLATION";
inline constexpr std::string_view kEnvKeep = "GAMEBOT_TEST_KEEP";
inline constexpr std::string_view kEnvReport = "GAMEBOT_TEST_REPORT";
inline constexpr std::string_view kEnvConnectDeadline = "GAMEBOT_TEST_CONNECT_DEADLINE";
inline constexpr std::string_view kEnvLogLevel = "GAMEBOT_TEST_LOG_LEVEL";
inline constexpr std::string_view kEnvMaxConnections = "GAMEBOT_TEST_MAX_CONNECTIONS";

// The result of resolving options: the options plus notes worth logging
// (e.g. an environment URL that a --backend flag overrode).
struct ResolvedOptions {
  HarnessOptions options;
  std::vector<std::string> notes;
};

// Combines flags and environment. Rules:
// - each option: flag, else environment variable, else default;
// - the backend defaults to sqlite, or to the backend of the URL when only a URL is given;
// - a URL contradicting the backend is a configuration error when both come from
//   the same source (two flags, or two variables); when the backend comes from a
//   flag and the URL only from the environment, the flag wins, the URL is dropped
//   and a note says so;
// - `--isolation schema` needs the postgres backend.
// Throws gamebot::Error(configuration) naming the flag or variable at fault; a URL
// in a message is redacted. Pure function of its inputs; thread-safe.
ResolvedOptions resolve_options(const OptionInputs& flags, const EnvGetter& env);

// One harness flag. harness_flags() is the only list of them: the command-line parser, the help
// text and the framework adapters (which hand the rest of argv to Catch2 or GoogleTest, and
// suggest the nearest flag for an unknown one) all read it, so a flag added here exists
// everywhere at once.
struct HarnessFlag {
  std::string_view name;                            // "--backend"
  std::string_view value;                           // what it takes ("SECONDS"); empty: a switch
  std::string_view env;                             // the environment variable that also sets it
  std::string_view help;                            // one line for --help
  std::optional<std::string> OptionInputs::*input;  // where the parser puts the given text
};

// Every harness flag, in help order.
std::span<const HarnessFlag> harness_flags() noexcept;

// argv split into the harness's flags and the arguments it does not own.
struct ExtractedOptions {
  OptionInputs inputs;
  // The arguments the harness did not consume, in order, argv[0] first: pass them to the test
  // framework.
  std::vector<std::string> remaining;
};

// Takes the flags of harness_flags() out of a command line. Accepts `--opt VALUE` and
// `--opt=VALUE`; a switch (`--keep`) takes no value, but `--keep=false` is accepted; a repeated
// option: the last one wins. Everything else, and everything after a `--`, is passed through
// untouched in `remaining`. Throws gamebot::Error(configuration) naming the option when a
// value is missing. Thread-safe.
ExtractedOptions extract_options(int argc, const char* const* argv);

// The flag nearest to `unknown` (a harness flag or one of `others`, e.g. the framework's own)
// for a "did you mean" hint: at most two edits away (or a third of its length, for long
// names), or `unknown` is a prefix of exactly one; nullopt when nothing is close. Pure.
std::optional<std::string> nearest_flag(std::string_view unknown,
                                        std::span<const std::string_view> others = {});

// The result of parse_options().
struct ParsedOptions {
  HarnessOptions options;
  std::vector<std::string> notes;
  // The arguments the harness did not consume, in order, argv[0] first: pass
  // them to the test framework.
  std::vector<std::string> remaining;
  // Pointers into `remaining` (valid while this object lives and is unchanged),
  // for APIs taking (argc, argv).
  std::vector<const char*> remaining_argv() const;
};

// extract_options(), then resolve_options(). Throws gamebot::Error(configuration) naming the
// option for a missing or invalid value. Thread-safe.
ParsedOptions parse_options(int argc, const char* const* argv, const EnvGetter& env);

// Help text for the harness options, from harness_flags() (for a --help screen).
std::string options_help();

}  // namespace gamebot::harness
