#include "process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gamebot/core/error.hpp"

extern char** environ;

namespace gamebot::harness::detail {
namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view variable(*entry);
    if (variable.starts_with("PG") || variable.starts_with("LC_ALL=")) continue;
    env.emplace_back(variable);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

[[noreturn]] void child_fail(int report_fd) {
  int error = errno;
  ssize_t ignored = ::write(report_fd, &error, sizeof error);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

std::optional<Identity> lookup_user(const std::string& name) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return Identity{found->pw_uid, found->pw_gid};
}

std::string CommandResult::describe() const {
  if (exec_errno != 0) return fmt::format("could not start: {}", std::strerror(exec_errno));
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exit code {}", exit_code);
}

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options) {
  if (argv.empty()) throw Error(FaultClass::internal, "run_command: empty argument vector");
  // Everything the child needs is prepared here: after fork it may not allocate.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage = child_environment();
  std::vector<char*> env;
  env.reserve(env_storage.size() + 1);
  for (std::string& variable : env_storage) env.push_back(variable.data());
  env.push_back(nullptr);

  Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int output_pipe[2] = {-1, -1};
  int report_pipe[2] = {-1, -1};
  if (dev_null.get() < 0 || ::pipe2(report_pipe, O_CLOEXEC) != 0) {
    throw Error(FaultClass::internal, fmt::format("run_command: {}", std::strerror(errno)));
  }
  Fd report_read(report_pipe[0]);
  Fd report_write(report_pipe[1]);
  if (options.output_fd < 0 && ::pipe2(output_pipe, O_CLOEXEC) != 0) {
    throw Error(FaultClass::internal, fmt::format("run_command: {}", std::strerror(errno)));
  }
  Fd output_read(output_pipe[0]);
  Fd output_write(output_pipe[1]);
  const int output_fd = options.output_fd >= 0 ? options.output_fd : output_write.get();

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw Error(FaultClass::internal, fmt::format("run_command: fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(dev_null.get(), STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
        ::dup2(output_fd, STDERR_FILENO) < 0) {
      child_fail(report_write.get());
    }
    if (options.run_as) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(options.run_as->gid) != 0 ||
          ::setuid(options.run_as->uid) != 0) {
        child_fail(report_write.get());
      }
    }
    if (options.search_path) {
      ::execvpe(args[0], args.data(), env.data());
    } else {
      ::execve(args[0], args.data(), env.data());
    }
    child_fail(report_write.get());
  }

  report_write.reset();
  output_write.reset();
  CommandResult result;
  if (output_read.get() >= 0) {
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(output_read.get(), buffer, sizeof buffer);
      if (n > 0) {
        result.output.append(buffer, static_cast<std::size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
  }
  int child_errno = 0;
  for (;;) {
    ssize_t n = ::read(report_read.get(), &child_errno, sizeof child_errno);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof child_errno)) child_errno = 0;
    break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw Error(FaultClass::internal,
                  fmt::format("run_command: waitpid: {}", std::strerror(errno)));
    }
  }
  result.exec_errno = child_errno;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace gamebot::harness::detail
