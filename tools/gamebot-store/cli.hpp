#pragma once

// The command-line frame of gamebot-store: a small argument parser (options
// `--name VALUE`, `--name=VALUE` and flags; positionals), help texts, the exit
// codes, one-line error reporting without passwords, opening stores from URLs
// and terminal-only progress. Single-threaded use.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/repo/database_url.hpp"

namespace gamebot::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed (violations, conflicts, bad input)
inline constexpr int kExitUsage = 2;    // bad command line or configuration
inline constexpr int kExitInfrastructure =
    3;  // connectivity, authentication, timeout, pool_exhausted

// The exit-code paragraph every --help ends with.
std::string_view exit_code_help() noexcept;

// A wrong command line. FaultClass::configuration; exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(std::string message) : Error(FaultClass::configuration, std::move(message)) {}
};

// The work failed for a reason that is not a fault of the command line: exit
// code 1 whatever the class (a missing stream, a version conflict, violations).
class Failure : public Error {
 public:
  Failure(FaultClass fault, std::string message) : Error(fault, std::move(message)) {}
};

// 0 ok, 2 for configuration, 3 for connectivity / authentication / timeout /
// pool_exhausted, 1 for every other fault.
int exit_code_for(FaultClass fault) noexcept;

struct OptionSpec {
  std::string name;        // without the dashes ("expected-version")
  std::string value_name;  // "N", "URL"; empty: a flag without value
  std::string help;        // one line
};

struct CommandSpec {
  std::string name;                      // "export", "test-dbs list"
  std::vector<std::string> positionals;  // "URL", "[STREAM]" (brackets: optional)
  std::string summary;                   // one line for the command list
  std::string details;                   // paragraphs after the synopsis
  std::vector<OptionSpec> options;       // --help is implicit
};

// The parsed command line of one command.
class Args {
 public:
  bool help = false;
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> values;  // flags map to "true"

  bool has(std::string_view name) const { return values.find(name) != values.end(); }
  std::optional<std::string> value(std::string_view name) const;
  // The value as an integer in [min, max]; UsageError naming the option otherwise.
  std::optional<std::int64_t> integer(std::string_view name, std::int64_t min,
                                      std::int64_t max) const;
};

// Throws UsageError naming the command for unknown options, missing values,
// missing or extra positionals (unless help was asked for).
Args parse_args(const CommandSpec& spec, std::span<const std::string> arguments);
std::string help_text(const CommandSpec& spec);

struct Command {
  CommandSpec spec;
  std::function<int(const Args&)> run;  // returns the exit code; throws gamebot::Error
};

// Registration of the command groups (one source file each).
void add_store_commands(std::vector<Command>& commands);
void add_transfer_commands(std::vector<Command>& commands);
void add_harness_commands(std::vector<Command>& commands);

// A URL argument as the commands use it: parsed once here (repo::DatabaseUrl,
// the one URL parser; a bad URL is a configuration error without its secrets),
// and its secrets remembered so error lines never print them.
repo::DatabaseUrl parse_store_url(std::string_view text);
// `text` with every remembered URL's secrets replaced by "***" (DatabaseUrl::scrub)
// and put on one line.
std::string scrub(std::string text);
// Prints "gamebot-store: <fault class>: <message>" to stderr.
void print_error(FaultClass fault, std::string_view message);

// Writes `line` and a newline to stdout.
void print_line(std::string_view line);

// Parses any | no_stream | stream_exists | N (also with '-' for '_'); UsageError otherwise.
eventstore::ExpectedVersion parse_expected_version(std::string_view text);

// Opens the store of `url` through eventstore::open (memory:, sqlite:PATH,
// sqlite::memory:, postgres(ql)://...). migrate: create or upgrade the schema;
// otherwise a store that does not exist or is not current is a schema fault
// naming `init` / `migrate`. Throws gamebot::Error.
eventstore::EventStore open_store(const repo::DatabaseUrl& url, bool migrate,
                                  bool allow_hard_delete = false);

// Throws a schema fault naming `gamebot-store init` when `url` is an SQLite
// file that does not exist (opening it would create an empty one).
void require_existing_sqlite_file(const repo::DatabaseUrl& url);

// Progress on stderr, only when stderr is a terminal; one line rewritten in
// place, finished by the destructor.
class Progress {
 public:
  explicit Progress(std::string what);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(std::uint64_t done);
  // Ends the progress line (before a summary is printed); later updates are ignored.
  void finish();

 private:
  std::string what_;
  bool enabled_;
  std::uint64_t done_ = 0;
  std::int64_t last_ms_ = -1;
};

}  // namespace gamebot::tools
