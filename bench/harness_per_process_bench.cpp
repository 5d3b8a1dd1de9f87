// What one test process costs when every test case is its own process (one CTest registration
// per case): the harness binary running one case (bench/per_process/harness_case.cpp) against a
// warm shared server, with transaction and with database isolation, beside the same-run
// baseline: a plain Catch2 process opening one libpq connection to the same server and running
// the same test body inside BEGIN/ROLLBACK (per_process/plain_case.cpp). Wall time from spawn to
// exit, median over N spawns; the variants take turns so they share the machine's load.
// GAMEBOT_BENCH_COMPARE_HARNESS_CASE names another build's harness case to take turns too.
// With no URL: the harness case joining the run's shared private server (a run directory held as
// the CTest fixture of gamebot_discover_tests() holds it), against the plain process on that
// server, in rounds of their own.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/bench/child_process.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/shared_postgres.hpp"

namespace {

using gamebot::bench::run_child;
using gamebot::harness::EphemeralPostgres;
using gamebot::harness::EphemeralPostgresOptions;
using gamebot::harness::SharedPostgres;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
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
    for (const auto* argv : {&plain, &transaction, &database}) run_child(*argv);
    for (const auto& argv : compared) run_child(argv);
  }

  std::vector<double> plain_ms;
  std::vector<double> transaction_ms;
  std::vector<double> database_ms;
  std::vector<std::vector<double>> compared_ms(compared.size());
  for (int i = 0; i < context.size(30, 5); ++i) {
    plain_ms.push_back(run_child(plain));
    transaction_ms.push_back(run_child(transaction));
    database_ms.push_back(run_child(database));
    for (std::size_t c = 0; c < compared.size(); ++c)
      compared_ms[c].push_back(run_child(compared[c]));
  }
  const double baseline = median(plain_ms);
  const gamebot::bench::Baseline plain_baseline{"plain Catch2 process, same body in BEGIN/ROLLBACK",
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

  // No URL: the run's shared private server, held here for the whole figure as the fixture holds
  // it for ctest; every harness process joins it through the run directory.
  std::string run_parent = (std::filesystem::temp_directory_path() / "gamebot-bench-run-XXXXXX");
  if (::mkdtemp(run_parent.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string run_dir = run_parent + "/run";
  SharedPostgres shared = SharedPostgres::acquire(run_dir, "bench-fixture", server_options);
  ::setenv(std::string(gamebot::harness::kEnvSharedServerDir).c_str(), run_dir.c_str(), 1);
  const std::vector<std::string> shared_plain{GAMEBOT_BENCH_PLAIN_CASE, shared.url("postgres")};
  const std::vector<std::string> shared_case{GAMEBOT_BENCH_HARNESS_CASE, "--backend", "postgres",
                                             "--isolation", "transaction"};
  for (int i = 0; i < 2; ++i)
    for (const auto* argv : {&shared_plain, &shared_case}) run_child(*argv);
  std::vector<double> shared_plain_ms;
  std::vector<double> shared_ms;
  for (int i = 0; i < context.size(30, 5); ++i) {
    shared_plain_ms.push_back(run_child(shared_plain));
    shared_ms.push_back(run_child(shared_case));
  }
  ::unsetenv(std::string(gamebot::harness::kEnvSharedServerDir).c_str());
  shared.release();
  std::error_code ignored;
  std::filesystem::remove_all(run_parent, ignored);
  const double shared_baseline = median(shared_plain_ms);
  context.report(gamebot::bench::at_most(
      "harness/per_process/shared_server/transaction/median", median(shared_ms), "ms",
      shared_baseline + 40,
      gamebot::bench::Baseline{"plain Catch2 process on the shared server", shared_baseline}));
}
