// Per-test isolation cost of the DatabaseManager (begin_test + end, i.e. setup + teardown as a
// test sees it) per backend and strategy, median and p99; run start-up with and without a
// cached template; and the "fresh database + migrations per test" baseline beside the clone.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"

using namespace gamebot::harness;
namespace fs = std::filesystem;

namespace {

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

// Milliseconds per begin_test + end (setup + teardown as the test sees them) over `tests`
// tests. `body` is the test's own work between the two (slept, not counted): the time the
// background threads have to prepare the next database/schema and drop the last one, as they
// do while a real test runs; zero measures back-to-back empty tests.
std::vector<double> per_test_ms(DatabaseManager& environment, int tests,
                                std::chrono::milliseconds body = std::chrono::milliseconds(0)) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(tests));
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < tests; ++i) {
    const auto start = clock::now();
    TestContext test = environment.begin_test("bench " + std::to_string(i));
    test.store();
    const auto setup = clock::now() - start;
    if (body.count() > 0) std::this_thread::sleep_for(body);
    const auto end_start = clock::now();
    test.end();
    const auto teardown = clock::now() - end_start;
    samples.push_back(std::chrono::duration<double, std::milli>(setup + teardown).count());
  }
  return samples;
}

void report_isolation(gamebot::bench::Context& context, const std::string& name,
                      const std::vector<double>& samples, double target_ms,
                      std::optional<gamebot::bench::Baseline> baseline = std::nullopt) {
  context.report(gamebot::bench::at_most("harness/isolation/" + name + "/median",
                                         percentile(samples, 0.5), "ms", target_ms,
                                         std::move(baseline)));
  context.report(gamebot::bench::at_most("harness/isolation/" + name + "/p99",
                                         percentile(samples, 0.99), "ms", target_ms * 3));
}

HarnessOptions options_for(Backend backend, Isolation isolation, std::string url) {
  HarnessOptions options;
  options.backend = backend;
  options.isolation = isolation;
  if (!url.empty()) options.database_url = gamebot::repo::DatabaseUrl::parse(url);
  options.log_level = LogLevel::warn;
  return options;
}

}  // namespace

GAMEBOT_BENCHMARK("harness/isolation/memory_sqlite", context) {
  const int tests = context.size(1000, 50);
  {
    DatabaseManager environment(options_for(Backend::memory, Isolation::transaction, {}), {});
    environment.start();
    report_isolation(context, "memory/reset", per_test_ms(environment, tests), 0.01);
  }
  const fs::path dir =
      fs::temp_directory_path() / ("gamebot-iso-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (Isolation isolation : {Isolation::transaction, Isolation::database}) {
    DatabaseManager environment(
        options_for(Backend::sqlite, isolation, "sqlite:" + (dir / "x.db").string()), {});
    environment.start();
    report_isolation(context, "sqlite/" + std::string(to_string(isolation)),
                     per_test_ms(environment, tests), 0.5);
  }
  fs::remove_all(dir);
}

GAMEBOT_BENCHMARK("harness/isolation/postgres", context) {
  const int tests = context.size(1000, 50);
  EphemeralPostgresOptions server_options;
  server_options.register_teardown = true;
  EphemeralPostgres server(server_options);
  const std::string url = server.url("postgres");

  // Start-up: the first run builds the template, the second clones it.
  double without_template = 0;
  double with_template = 0;
  {
    const auto start = std::chrono::steady_clock::now();
    DatabaseManager first(options_for(Backend::postgres, Isolation::transaction, url), {});
    first.start();
    without_template =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  {
    const auto start = std::chrono::steady_clock::now();
    DatabaseManager second(options_for(Backend::postgres, Isolation::transaction, url), {});
    second.start();
    with_template =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    report_isolation(context, "postgres/transaction", per_test_ms(second, tests), 0.3);
  }
  context.report(gamebot::bench::at_most(
      "harness/startup/postgres/with_template", with_template, "ms", 300,
      gamebot::bench::Baseline{"first run (builds the template)", without_template}));

  // Baseline: a fresh database plus the store's migrations per test (sqlx's way).
  const int fresh_tests = context.size(100, 5);
  std::vector<double> fresh;
  {
    auto admin = gamebot::repo::connect(url);
    for (int i = 0; i < fresh_tests; ++i) {
      const std::string name = "gamebot_bench_fresh_" + std::to_string(i);
      const auto start = std::chrono::steady_clock::now();
      admin->execute("CREATE DATABASE " + name);
      {
        auto c = gamebot::repo::connect(server.url(name));
        gamebot::eventstore::postgres_event_store_migrator("gamebot_eventstore").migrate(*c);
      }
      admin->execute("DROP DATABASE " + name + " WITH (FORCE)");
      fresh.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
  }
  const gamebot::bench::Baseline fresh_baseline{"fresh database + migrations per test",
                                                percentile(fresh, 0.5)};
  context.report(gamebot::bench::at_most("harness/isolation/postgres/baseline_fresh/p99",
                                         percentile(fresh, 0.99), "ms", 1e9));

  // Tests with a body (the figure the targets are about) and back-to-back empty tests (bound
  // by how fast the background threads can create and drop).
  const int clone_tests = context.size(1000, 20);
  const int empty_tests = context.size(200, 5);
  const auto body = std::chrono::milliseconds(50);
  for (Isolation isolation : {Isolation::database, Isolation::schema}) {
    const std::string label(to_string(isolation));
    const double target = isolation == Isolation::database ? 15 : 10;
    {
      DatabaseManager environment(options_for(Backend::postgres, isolation, url), {});
      environment.start();
      report_isolation(context, "postgres/" + label + "/body_50ms",
                       per_test_ms(environment, clone_tests, body), target, fresh_baseline);
    }
    {
      DatabaseManager environment(options_for(Backend::postgres, isolation, url), {});
      environment.start();
      report_isolation(context, "postgres/" + label + "/back_to_back",
                       per_test_ms(environment, empty_tests), target, fresh_baseline);
    }
  }
}
