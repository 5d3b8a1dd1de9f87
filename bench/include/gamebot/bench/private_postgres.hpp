#pragma once

// The PostgreSQL server of the benchmarks: GAMEBOT_BENCH_PG_URL if set, else a
// private server that scripts/pg-test-server starts (fork/exec, no shell) on
// first use and stops when the process exits. One server serves every
// benchmark of a gamebot-bench run.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

// The source tree's scripts/pg-test-server, as an absolute path (bench/CMakeLists.txt): the
// benchmarks run from any directory. This header's own __FILE__ was not one to build on: a
// compiler launcher (ccache with base_dir) makes it relative to the build directory.
#ifndef GAMEBOT_PG_TEST_SERVER
#error "GAMEBOT_PG_TEST_SERVER (the path of scripts/pg-test-server) is not defined"
#endif

namespace gamebot::bench {

// A private server from scripts/pg-test-server, stopped (and its directory
// removed) by the destructor. Throws std::runtime_error if it cannot start.
class PrivatePostgres {
 public:
  PrivatePostgres()
      : script_(GAMEBOT_PG_TEST_SERVER),
        dir_((std::filesystem::temp_directory_path() /
              ("gamebot-bench-pg-" + std::to_string(::getpid())))
                 .string()) {
    run("start");
    started_ = true;
  }
  ~PrivatePostgres() {
    if (started_) {
      try {
        run("stop");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "stopping the benchmark PostgreSQL server failed: %s\n", e.what());
      }
    }
  }
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  // Superuser "postgres" on the unix socket, database "postgres".
  std::string url() const { return "postgresql://postgres@/postgres?host=" + dir_; }

 private:
  void run(const char* action) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Keep the script's chatter off the benchmark table.
      if (std::freopen("/dev/null", "w", stdout) == nullptr) std::_Exit(126);
      ::execl(script_.c_str(), script_.c_str(), action, dir_.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error(script_ + " " + action + " " + dir_ + " failed (status " +
                               std::to_string(status) + ")");
    }
  }

  std::string script_;
  std::string dir_;
  bool started_ = false;
};

// GAMEBOT_BENCH_PG_URL, or the URL of the process-wide private server
// (started on the first call). Thread-safe.
inline std::string bench_postgres_url() {
  if (const char* env = std::getenv("GAMEBOT_BENCH_PG_URL"); env != nullptr && *env != '\0') {
    return env;
  }
  static std::mutex mutex;
  static std::unique_ptr<PrivatePostgres> server;
  std::lock_guard lock(mutex);
  if (!server) server = std::make_unique<PrivatePostgres>();
  return server->url();
}

}  // namespace gamebot::bench
