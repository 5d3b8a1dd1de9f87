// The preflight phase (the serializer conformance suite) of the example's registry, as the
// harness runs it at every process's start: the first process of a build, which runs the whole
// suite, and every later one, which finds the pass remembered for the same code and inputs
// (preflight_cache.hpp). Timed by the run report's phase record; memory backend, so no database
// work is mixed in. Baseline in the same run: run_conformance() itself.

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/logging.hpp"
#include "gamebot_example/events.hpp"

using namespace gamebot::harness;
namespace fs = std::filesystem;

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

HarnessSetup example_setup() {
  HarnessSetup setup;
  setup.registry = gamebot_example::make_registry();
  setup.conformance.golden_dir = GAMEBOT_EXAMPLE_GOLDEN_DIR;
  return setup;
}

// One run's preflight phase, in milliseconds.
double preflight_ms() {
  HarnessOptions options;
  options.backend = Backend::memory;
  options.log_level = LogLevel::warn;
  DatabaseManager environment(options, example_setup());
  environment.start();
  for (const PhaseRecord& phase : environment.report().phases())
    if (phase.phase == Phase::preflight)
      return std::chrono::duration<double, std::milli>(phase.duration).count();
  return 0;
}

}  // namespace

GAMEBOT_BENCHMARK("harness/preflight", context) {
  // A private TMPDIR: the first run below finds nothing remembered, as a fresh build does.
  std::string scratch = (fs::temp_directory_path() / "gamebot-bench-preflight-XXXXXX").string();
  if (::mkdtemp(scratch.data()) == nullptr) return;
  const char* old_tmp = std::getenv("TMPDIR");
  const std::string saved = old_tmp != nullptr ? old_tmp : "";
  ::setenv("TMPDIR", scratch.c_str(), 1);

  const HarnessSetup setup = example_setup();
  std::vector<double> suite;
  for (int i = 0; i < context.size(5, 2); ++i) {
    suite.push_back(gamebot::bench::seconds([&] {
                      (void)gamebot::serializers::run_conformance(setup.registry,
                                                                  setup.conformance);
                    }) *
                    1000.0);
  }
  const double first = preflight_ms();
  std::vector<double> later;
  for (int i = 0; i < context.size(50, 10); ++i) later.push_back(preflight_ms());

  if (old_tmp != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  std::error_code ignored;
  fs::remove_all(scratch, ignored);

  const gamebot::bench::Baseline baseline{"run_conformance() of the example registry",
                                          median(suite)};
  context.report(gamebot::bench::at_most("harness/preflight/example/first_process", first, "ms",
                                         1000.0, baseline));
  context.report(gamebot::bench::at_most("harness/preflight/example/later_process/median",
                                         median(later), "ms", 3.0, baseline));
}
