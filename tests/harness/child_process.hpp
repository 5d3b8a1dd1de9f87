#pragma once

// A child process for the harness tests: spawned with posix_spawn (no fork of
// the test process), stdout on a pipe the test reads line by line.

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace gamebot::harness::testing {

class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    read_fd_ = fds[0];
    if (rc != 0) {
      ::close(read_fd_);
      throw std::runtime_error("posix_spawn failed for " + argv[0]);
    }
  }
  ~ChildProcess() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of the child's stdout; nullopt on EOF or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd pfd{read_fd_, POLLIN, 0};
      int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready <= 0) continue;
      char chunk[512];
      ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void signal(int sig) { ::kill(pid_, sig); }

  // Closes our end of the child's stdout (like `| head` exiting): its next write fails.
  void close_output() {
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
  }

  // Waits for the child to end; the raw waitpid status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
    }
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  bool reaped_ = false;
  std::string buffer_;
};

// How a child that ran to its end ended, and everything it wrote.
struct ChildOutcome {
  int status = -1;     // the raw waitpid status
  std::string output;  // stdout and stderr, interleaved
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Runs `argv` (argv[0] a path) with the `env` entries (NAME=value) added to the environment and
// stderr folded into stdout, until it ends or `limit` passes (then it is killed).
inline ChildOutcome run_to_end(const std::vector<std::string>& argv,
                               const std::vector<std::string>& env = {},
                               std::chrono::seconds limit = std::chrono::seconds(30)) {
  std::vector<std::string> command{"/usr/bin/env"};
  command.insert(command.end(), env.begin(), env.end());
  for (const char* a : {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"}) command.emplace_back(a);
  command.insert(command.end(), argv.begin(), argv.end());
  ChildProcess child(command);
  ChildOutcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (auto line = child.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - std::chrono::steady_clock::now())))
    outcome.output += *line + "\n";
  if (std::chrono::steady_clock::now() >= deadline) child.signal(SIGKILL);
  outcome.status = child.wait();
  return outcome;
}

}  // namespace gamebot::harness::testing
