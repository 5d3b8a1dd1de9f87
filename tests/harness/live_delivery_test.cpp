// Subscriptions inside a harness test wake on the append itself: the store a test gets wraps
// the backend (to track subscriptions for leak reports), and the wrapper must hand out the
// wrapped backend's change notifier, or subscribers would only wake on the poll interval.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;
namespace es = gamebot::eventstore;
using namespace std::chrono_literals;

namespace {

void check_append_wakes_subscribers(HarnessOptions options) {
  options.log_level = LogLevel::warn;
  DatabaseManager environment(options, {});
  environment.start();
  TestContext context = environment.begin_test("live delivery");
  es::EventStore& store = context.store();
  const std::uint64_t before = store.backend().changes().sequence();
  es::EventData event;
  event.type = "thing_happened";
  REQUIRE(store.append("s", es::ExpectedVersion::any(), event).ok());
  // The notifier subscribers wait on moved: a waiting subscriber is woken now, not at its poll.
  CHECK(store.backend().changes().sequence() > before);
  {
    es::Subscription live = store.subscribe(es::kAllStream);
    std::thread writer([&] {
      std::this_thread::sleep_for(20ms);
      REQUIRE(store.append("s", es::ExpectedVersion::any(), event).ok());
    });
    auto received = live.next(10s);
    writer.join();
    REQUIRE(received);
    CHECK(received->global_position == 2);
  }
  CHECK(context.end().empty());
}

}  // namespace

TEST_CASE("memory backend: an append in a test wakes the test's subscribers",
          "[harness][memory][subscriptions]") {
  HarnessOptions options;
  options.backend = Backend::memory;
  check_append_wakes_subscribers(options);
}

TEST_CASE("sqlite backend: an append in a test wakes the test's subscribers",
          "[harness][sqlite][subscriptions]") {
  gamebot::testing::TempDir dir;
  HarnessOptions options;
  options.backend = Backend::sqlite;
  options.isolation = Isolation::database;
  options.database_url = gamebot::repo::DatabaseUrl::sqlite_file(dir.path() + "/app.db");
  check_append_wakes_subscribers(options);
}
