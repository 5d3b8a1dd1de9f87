#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace gamebot::harness::detail {

// A user to run a command as.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The user's ids; nullopt if there is no such user.
std::optional<Identity> lookup_user(const std::string& name);

struct CommandOptions {
  std::optional<Identity> run_as;  // switch user in the child (needs root)
  int output_fd = -1;              // stdout and stderr go here; -1: captured into the result
  bool search_path = false;        // look argv[0] up in PATH
};

struct CommandResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal killed it
  int exec_errno = 0;  // when it could not be started (or the user switch failed)
  std::string output;  // captured stdout+stderr (when output_fd was -1)

  bool ok() const noexcept { return exec_errno == 0 && signal == 0 && exit_code == 0; }
  // "exit code 1", "killed by signal 9", "could not start: No such file or directory".
  std::string describe() const;
};

// Runs a program: fork + exec with an argument vector (never a shell), stdin
// from /dev/null, an empty signal mask, and an environment without PG*
// variables (so a user's PGPORT cannot redirect a server) and with LC_ALL=C.
// Blocks until it exits. Thread-safe (the child only calls async-signal-safe
// functions before exec). Throws gamebot::Error(internal) if fork/pipe fail.
CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options);

}  // namespace gamebot::harness::detail
