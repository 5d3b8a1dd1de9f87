// The preflight remembers a suite that passed (preflight_cache.hpp): a later process with the
// same code and inputs skips it; a changed golden file or sample is never covered by the memory.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cereal/cereal.hpp>
#include <string>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/serializers/conformance.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;

namespace {

struct Point {
  int x = 0;
  int y = 0;
  bool operator==(const Point&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(x), CEREAL_NVP(y));
  }
};

// TMPDIR (where the preflight remembers passes) set to a directory of this test.
struct PrivateTmp {
  gamebot::testing::TempDir dir;
  std::string saved;
  bool had = false;
  PrivateTmp() {
    if (const char* old = std::getenv("TMPDIR")) {
      had = true;
      saved = old;
    }
    ::setenv("TMPDIR", dir.path().c_str(), 1);
  }
  ~PrivateTmp() {
    if (had) {
      ::setenv("TMPDIR", saved.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
};

HarnessSetup point_setup(const std::string& golden_dir, Point sample = {1, 2}) {
  HarnessSetup setup;
  setup.registry.register_type<Point>("point", 1, {sample});
  setup.conformance.golden_dir = golden_dir;
  return setup;
}

// The preflight phase's record of one run on the memory backend; throws its PhaseFailure.
PhaseRecord preflight_of(HarnessSetup setup) {
  HarnessOptions options;
  options.backend = Backend::memory;
  options.log_level = LogLevel::off;
  DatabaseManager environment(options, std::move(setup));
  environment.start();
  for (const PhaseRecord& phase : environment.report().phases())
    if (phase.phase == Phase::preflight) return phase;
  FAIL("no preflight phase recorded");
  return {};
}

void write_golden_files(const std::string& golden_dir, Point sample = {1, 2}) {
  HarnessSetup setup = point_setup(golden_dir, sample);
  setup.conformance.update_golden = true;
  REQUIRE(gamebot::serializers::run_conformance(setup.registry, setup.conformance).passed());
}

}  // namespace

TEST_CASE("a later run with the same code and inputs skips the passed preflight",
          "[harness][memory]") {
  PrivateTmp tmp;
  gamebot::testing::TempDir golden;
  write_golden_files(golden.path());
  const PhaseRecord first = preflight_of(point_setup(golden.path()));
  CHECK(first.ok);
  CHECK_THAT(first.message, !Catch::Contains("passed before"));
  const PhaseRecord second = preflight_of(point_setup(golden.path()));
  CHECK(second.ok);
  CHECK_THAT(second.message, Catch::Contains("entries conform (passed before"));
}

TEST_CASE("a changed golden file after a remembered pass still fails the preflight",
          "[harness][memory]") {
  PrivateTmp tmp;
  gamebot::testing::TempDir golden;
  write_golden_files(golden.path());
  REQUIRE(preflight_of(point_setup(golden.path())).ok);
  write_golden_files(golden.path(), {1, 3});  // the encoding of another sample
  CHECK_THROWS_AS(preflight_of(point_setup(golden.path())), PhaseFailure);
}

TEST_CASE("the suite's inputs differ when a sample's bytes differ", "[harness][memory]") {
  gamebot::testing::TempDir golden;
  const HarnessSetup one = point_setup(golden.path(), {1, 2});
  const HarnessSetup other = point_setup(golden.path(), {1, 3});
  const auto a = gamebot::serializers::conformance_inputs(one.registry, one.conformance);
  const auto b = gamebot::serializers::conformance_inputs(other.registry, other.conformance);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a != *b);
  HarnessSetup updating = point_setup(golden.path());
  updating.conformance.update_golden = true;
  CHECK_FALSE(gamebot::serializers::conformance_inputs(updating.registry, updating.conformance)
                  .has_value());
}
