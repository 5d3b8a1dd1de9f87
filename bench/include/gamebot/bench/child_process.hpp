#pragma once

// Runs a child program to its end for a benchmark: the PostgreSQL and
// PgBouncer scripts, and the per-process bench's test processes. Its stdout is
// discarded (the benchmark table owns ours); its stderr is kept in a file and
// quoted when it fails, to say why.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace gamebot::bench {

// Runs `argv` (argv[0] a path) to its end and returns its wall time in
// milliseconds, from spawn to exit. Throws std::runtime_error, with the start
// of the child's stderr, if it cannot be started or does not exit 0.
inline double run_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char log_path[] = "/tmp/gamebot-bench-child-XXXXXX";
  const int log_fd = ::mkstemp(log_path);
  if (log_fd < 0) throw std::runtime_error("mkstemp failed");
  ::unlink(log_path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ::close(log_fd);
    throw std::runtime_error("cannot start " + argv[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::string log(4096, '\0');
  const ssize_t got = ::pread(log_fd, log.data(), log.size(), 0);
  log.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  ::close(log_fd);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
    throw std::runtime_error(command + " failed (status " + std::to_string(status) + "):\n" + log);
  }
  return std::chrono::duration<double, std::milli>(elapsed).count();
}

}  // namespace gamebot::bench
