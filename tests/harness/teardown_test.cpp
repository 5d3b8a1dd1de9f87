#include "gamebot/harness/teardown.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using namespace gamebot::harness;

TEST_CASE("run_all runs the actions last registered first", "[harness][teardown]") {
  TeardownRegistry registry;
  std::vector<int> order;
  for (int i = 1; i <= 4; ++i) registry.add("step", [&order, i] { order.push_back(i); }).release();
  CHECK(registry.pending() == 4);
  CHECK(registry.run_all() == 4);
  CHECK(order == std::vector<int>{4, 3, 2, 1});
  CHECK(registry.pending() == 0);
}

TEST_CASE("each action runs exactly once however it is triggered", "[harness][teardown]") {
  TeardownRegistry registry;
  int runs = 0;
  TeardownHandle handle = registry.add("count", [&] { ++runs; });
  CHECK(handle.pending());
  registry.run_all();
  CHECK(runs == 1);
  CHECK_FALSE(handle.pending());
  handle.run_now();
  registry.run_all();
  CHECK(runs == 1);
  {
    TeardownHandle scoped = registry.add("scoped", [&] { ++runs; });
  }
  CHECK(runs == 2);  // the handle's destructor ran it
  CHECK(registry.run_all() == 0);
  CHECK(runs == 2);
}

TEST_CASE("a handle runs its action early and the registry does not run it again",
          "[harness][teardown]") {
  TeardownRegistry registry;
  std::vector<std::string> log;
  TeardownHandle first = registry.add("first", [&] { log.push_back("first"); });
  TeardownHandle second = registry.add("second", [&] { log.push_back("second"); });
  first.run_now();
  CHECK(log == std::vector<std::string>{"first"});
  second.release();
  CHECK(registry.run_all() == 1);
  CHECK(log == std::vector<std::string>{"first", "second"});
}

TEST_CASE("a dismissed action never runs", "[harness][teardown]") {
  TeardownRegistry registry;
  int runs = 0;
  TeardownHandle handle = registry.add("dismissed", [&] { ++runs; });
  handle.dismiss();
  CHECK_FALSE(handle.pending());
  CHECK(registry.run_all() == 0);
  CHECK(runs == 0);
}

TEST_CASE("a throwing action does not stop the others", "[harness][teardown]") {
  TeardownRegistry registry;
  std::vector<int> order;
  registry.add("ok 1", [&] { order.push_back(1); }).release();
  registry.add("throws", [] { throw std::runtime_error("cleanup failed"); }).release();
  registry.add("ok 3", [&] { order.push_back(3); }).release();
  CHECK(registry.run_all() == 3);
  CHECK(order == std::vector<int>{3, 1});
}

TEST_CASE("an action that triggers the registry again does not deadlock or repeat",
          "[harness][teardown]") {
  TeardownRegistry registry;
  std::vector<int> order;
  registry.add("first", [&] { order.push_back(1); }).release();
  registry
      .add("reentrant",
           [&] {
             order.push_back(2);
             registry.run_all();  // what std::exit from inside a cleanup would do
           })
      .release();
  CHECK(registry.run_all() == 1);
  CHECK(order == std::vector<int>{2, 1});
}

TEST_CASE("a moved handle owns the action once", "[harness][teardown]") {
  TeardownRegistry registry;
  int runs = 0;
  TeardownHandle original = registry.add("moved", [&] { ++runs; });
  TeardownHandle moved = std::move(original);
  original.run_now();  // NOLINT(bugprone-use-after-move): empty after the move, nothing happens
  CHECK(runs == 0);
  moved.run_now();
  CHECK(runs == 1);
}

TEST_CASE("the registry's destructor runs what is left", "[harness][teardown]") {
  int runs = 0;
  {
    TeardownRegistry registry;
    registry.add("left", [&] { ++runs; }).release();
  }
  CHECK(runs == 1);
}
