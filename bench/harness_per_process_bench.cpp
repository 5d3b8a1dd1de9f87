// What one test process costs when every test case is its own process (one CTest registration
// per case): the harness binary running one case (bench/per_process/harness_case.cpp) against a
// warm shared server, with transaction and with database isolation, beside the same-run
// baseline: a plain process opening one libpq connection to the same server and running the
// same test body inside BEGIN/ROLLBACK (per_process/plain_case.cpp). Wall time from spawn to
// exit, median over N spawns; the variants take turns so they share the machine's load.
// GAMEBOT_BENCH_COMPARE_HARNESS_CASE names another build's harness case to take turns too.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"

extern char** environ;

namespace {

using gamebot::harness::EphemeralPostgres;
using gamebot::harness::EphemeralPostgresOptions;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Milliseconds from spawn to exit of `argv`, its output discarded. Throws if it did not exit 0.
double spawn_ms(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  // stderr kept in a file, to say why a child failed.
  char log_path[] = "/tmp/gamebot-bench-child-XXXXXX";
  const int log_fd = ::mkstemp(log_path);
  if (log_fd < 0) throw std::runtime_error("mkstemp failed");
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot spawn " + argv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::string log(4096, '\0');
  const ssize_t got = ::pread(log_fd, log.data(), log.size(), 0);
  log.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  ::close(log_fd);
  ::unlink(log_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(argv[0] + " failed (status " + std::to_string(status) + "):\n" + log);
  return std::chrono::duration<double, std::milli>(elapsed).count();
}

}  // namespace

GAMEBOT_BENCHMARK("harness/per_process", context) {
  EphemeralPostgresOptions server_options;
  server_options.register_teardown = true;
  EphemeralPostgres server(server_options);
  const std::string url = server.url("postgres");

  const std::vector<std::string> plain{GAMEBOT_BENCH_PLAIN_CASE, url};
  auto harness = [&](const std::string& binary, const char* isolation) {
    return std::vector<std::string>{binary, "--backend",   "postgres", "--database-url",
                                    url,    "--isolation", isolation};
  };
  const std::vector<std::string> transaction = harness(GAMEBOT_BENCH_HARNESS_CASE, "transaction");
  const std::vector<std::string> database = harness(GAMEBOT_BENCH_HARNESS_CASE, "database");
  // Another build's harness case (a copy of an earlier commit's), spawned in the same rounds:
  // before and after compared under the same load on a shared machine.
  const char* compare_binary = std::getenv("GAMEBOT_BENCH_COMPARE_HARNESS_CASE");
  std::vector<std::vector<std::string>> compared;
  if (compare_binary != nullptr && *compare_binary != '\0')
    compared = {harness(compare_binary, "transaction"), harness(compare_binary, "database")};

  // Warm: the template is built, the preflight's pass remembered, the server's caches filled.
  for (int i = 0; i < 2; ++i) {
    for (const auto* argv : {&plain, &transaction, &database}) spawn_ms(*argv);
    for (const auto& argv : compared) spawn_ms(argv);
  }

  std::vector<double> plain_ms;
  std::vector<double> transaction_ms;
  std::vector<double> database_ms;
  std::vector<std::vector<double>> compared_ms(compared.size());
  for (int i = 0; i < context.size(30, 5); ++i) {
    plain_ms.push_back(spawn_ms(plain));
    transaction_ms.push_back(spawn_ms(transaction));
    database_ms.push_back(spawn_ms(database));
    for (std::size_t c = 0; c < compared.size(); ++c)
      compared_ms[c].push_back(spawn_ms(compared[c]));
  }
  const double baseline = median(plain_ms);
  const gamebot::bench::Baseline plain_baseline{"plain libpq process, same body in BEGIN/ROLLBACK",
                                                baseline};
  context.report(
      gamebot::bench::at_most("harness/per_process/plain/median", baseline, "ms", baseline * 10));
  context.report(gamebot::bench::at_most("harness/per_process/transaction/median",
                                         median(transaction_ms), "ms",
                                         std::max(baseline * 1.5, baseline + 15), plain_baseline));
  context.report(gamebot::bench::at_most("harness/per_process/database/median", median(database_ms),
                                         "ms", baseline + 30, plain_baseline));
  if (!compared.empty()) {
    context.report(gamebot::bench::at_most(
        "harness/per_process/compared/transaction/median", median(compared_ms[0]), "ms",
        std::max(baseline * 1.5, baseline + 15), plain_baseline));
    context.report(gamebot::bench::at_most("harness/per_process/compared/database/median",
                                           median(compared_ms[1]), "ms", baseline + 30,
                                           plain_baseline));
  }
}
