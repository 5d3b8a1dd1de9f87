#pragma once

// Running the harness-based Catch2 child (catch2_child.cpp) and looking at what a run left:
// shared by the fault scenarios and the signal tests. GAMEBOT_HARNESS_CATCH2_CHILD names it.

#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/repo/connection.hpp"

namespace gamebot::harness::testing {

struct Outcome {
  int status = -1;
  std::string output;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// The status as a shell reports it: the exit code, or 128 + the signal that ended the process.
inline int shell_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// `program args...` through /usr/bin/env (to set `env`, NAME=value entries), stderr folded in.
inline std::vector<std::string> folded_command(const std::string& program,
                                               std::vector<std::string> args,
                                               const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{"/usr/bin/env"};
  for (const auto& e : env) argv.push_back(e);
  for (const char* a : {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"}) argv.emplace_back(a);
  argv.push_back(program);
  for (auto& a : args) argv.push_back(std::move(a));
  return argv;
}

// Runs folded_command(program, args, env) to its end (each line within `limit`).
inline Outcome run_folded(const std::string& program, std::vector<std::string> args,
                          const std::vector<std::string>& env = {},
                          std::chrono::seconds limit = std::chrono::seconds(30)) {
  ChildProcess child(folded_command(program, std::move(args), env));
  Outcome outcome;
  while (auto line = child.read_line(limit)) outcome.output += *line + "\n";
  outcome.status = child.wait();
  return outcome;
}

// Runs the child with `args` (the scenario and `env`, NAME=value entries, set), stderr folded in.
inline std::vector<std::string> command(const std::string& scenario, std::vector<std::string> args,
                                        const std::vector<std::string>& env = {}) {
  std::vector<std::string> all_env{"GAMEBOT_CHILD_SCENARIO=" + scenario,
                                   "GAMEBOT_TEST_LOG_LEVEL=info"};
  for (const auto& e : env) all_env.push_back(e);
  return folded_command(GAMEBOT_HARNESS_CATCH2_CHILD, std::move(args), all_env);
}

inline Outcome run(const std::string& scenario, std::vector<std::string> args,
                   const std::vector<std::string>& env = {},
                   std::chrono::seconds limit = std::chrono::seconds(20)) {
  ChildProcess child(command(scenario, std::move(args), env));
  Outcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (auto line = child.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - std::chrono::steady_clock::now())))
    outcome.output += *line + "\n";
  outcome.status = child.wait();
  return outcome;
}

// Reads lines until one contains `text`; false on EOF or timeout.
inline bool wait_for_line(ChildProcess& child, const std::string& text,
                          std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (auto line = child.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - std::chrono::steady_clock::now())))
    if (line->find(text) != std::string::npos) return true;
  return false;
}

// Databases of a run: named after `run_id` or `worker` (clone names carry the worker), or
// carrying a marker that names `run_id`; not the template, a pooled run database nor a ready
// clone (shared by the runs, kept on purpose; the marker names the run that made or left it),
// nor a spent clone (dropped in the background, maybe still under way).
inline std::int64_t databases_of_run(gamebot::repo::Connection& admin, const std::string& run_id,
                                     const std::string& worker) {
  return admin
      .query_value<std::int64_t>(
          "SELECT count(*) FROM pg_database WHERE datname LIKE 'gamebot\\_test\\_%' AND "
          "datname NOT LIKE 'gamebot\\_test\\_tpl%' AND "
          "datname NOT LIKE 'gamebot\\_test\\_pool%' AND "
          "datname NOT LIKE 'gamebot\\_test\\_ready%' AND "
          "(strpos(datname, $1) > 0 OR strpos(datname, $2) > 0 OR "
          "strpos(coalesce(shobj_description(oid, 'pg_database'), ''), $1) > 0) AND "
          "strpos(coalesce(shobj_description(oid, 'pg_database'), ''), $3) = 0",
          run_id, "_w" + worker + "_",
          "\nresource=" + std::string(gamebot::harness::marked::kSpentResource) + "\n")
      .value_or(-1);
}

inline std::size_t run_directories(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("gamebot_test_", 0) == 0)
      ++n;
  }
  return n;
}

}  // namespace gamebot::harness::testing
