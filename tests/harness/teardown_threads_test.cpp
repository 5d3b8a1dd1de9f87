#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "gamebot/harness/teardown.hpp"

using namespace gamebot::harness;
using namespace std::chrono_literals;

TEST_CASE("concurrent run_all calls run every action exactly once",
          "[harness][teardown][concurrency]") {
  TeardownRegistry registry;
  constexpr int kActions = 200;
  std::vector<std::atomic<int>> runs(kActions);
  for (int i = 0; i < kActions; ++i) {
    registry.add("action", [&runs, i] { runs[static_cast<std::size_t>(i)].fetch_add(1); })
        .release();
  }
  std::atomic<std::size_t> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { total += registry.run_all(); });
  }
  for (auto& thread : threads) thread.join();
  CHECK(total == kActions);
  for (const auto& count : runs) CHECK(count.load() == 1);
}

TEST_CASE("run_now waits for the action another thread is running",
          "[harness][teardown][concurrency]") {
  TeardownRegistry registry;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  std::atomic<int> runs{0};
  TeardownHandle handle = registry.add("slow", [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    ++runs;
    finished = true;
  });
  std::thread runner([&] { registry.run_all(); });
  while (!started) std::this_thread::yield();
  handle.run_now();
  CHECK(finished.load());  // run_now returned only after the action completed
  runner.join();
  CHECK(runs == 1);
}

TEST_CASE("run_all waits for an action another thread started",
          "[harness][teardown][concurrency]") {
  TeardownRegistry registry;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  TeardownHandle handle = registry.add("slow", [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
  });
  std::thread owner([&] { handle.run_now(); });
  while (!started) std::this_thread::yield();
  CHECK(registry.run_all() == 0);
  CHECK(finished.load());
  owner.join();
}

TEST_CASE("actions added while others run are not lost", "[harness][teardown][concurrency]") {
  TeardownRegistry registry;
  std::atomic<int> runs{0};
  std::thread adder([&] {
    for (int i = 0; i < 500; ++i) registry.add("added", [&] { ++runs; }).release();
  });
  std::thread runner([&] {
    for (int i = 0; i < 50; ++i) registry.run_all();
  });
  adder.join();
  runner.join();
  registry.run_all();
  CHECK(runs == 500);
  CHECK(registry.pending() == 0);
}
