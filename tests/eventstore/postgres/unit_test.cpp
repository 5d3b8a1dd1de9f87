// Units of the PostgreSQL backend that need no server: the watermark
// arithmetic, the replica's usable watermark, the store URL parameters, the
// migration set.

#include <catch2/catch.hpp>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/open.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "replica.hpp"
#include "watermark.hpp"

namespace gamebot::eventstore {
namespace {

using postgres_detail::ProbedWriter;
using postgres_detail::WatermarkProbe;
using postgres_detail::WatermarkTracker;

WatermarkProbe probe(GlobalPosition last, std::vector<std::uint64_t> writers = {}) {
  WatermarkProbe p;
  p.last_reserved = last;
  for (std::uint64_t xid : writers) p.writers.push_back(ProbedWriter{xid, std::nullopt});
  return p;
}

TEST_CASE("a replica serves the highest probed watermark whose WAL position it has replayed",
          "[eventstore][postgres][replica]") {
  postgres_detail::ReplicaProgress progress;
  CHECK(progress.usable(1000) == 0);  // no probe yet: nothing is known to be final
  progress.add({5, 100});
  progress.add({9, 200});
  progress.add({9, 250});  // the same watermark keeps its earlier WAL position
  progress.add({14, 300});
  CHECK(progress.usable(99) == 0);
  CHECK(progress.usable(100) == 5);
  CHECK(progress.usable(200) == 9);
  CHECK(progress.usable(299) == 9);  // 14 is final on the primary, not yet on the replica
  CHECK(progress.usable(300) == 14);
  REQUIRE(progress.latest().has_value());
  CHECK(progress.latest()->safe == 14);
  CHECK(progress.latest()->wal == 300);
}

TEST_CASE("with no writer in flight the watermark is the last position taken",
          "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  CHECK(tracker.apply(probe(0)).safe == 0);
  const auto outcome = tracker.apply(probe(42));
  CHECK(outcome.safe == 42);
  CHECK_FALSE(outcome.unresolved);
  CHECK(tracker.safe() == 42);
}

TEST_CASE("a writer first seen in flight holds the watermark until it is bounded or gone",
          "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  // A fresh reader: writer 700 is in flight and could hold any position <= 10.
  auto first = tracker.apply(probe(10, {700}));
  CHECK(first.unresolved);
  CHECK(first.safe == 0);
  // Still in flight: still unknown, the watermark stays.
  auto second = tracker.apply(probe(12, {700}));
  CHECK(second.unresolved);
  CHECK(second.safe == 0);
  // Gone: everything taken so far is final.
  auto third = tracker.apply(probe(12));
  CHECK_FALSE(third.unresolved);
  CHECK(third.safe == 12);
}

TEST_CASE("a writer that was unmarked at the previous probe takes positions after its L",
          "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  tracker.apply(probe(5));
  // 800 marked itself after the previous probe: its positions are > 5.
  auto outcome = tracker.apply(probe(9, {800}));
  CHECK_FALSE(outcome.unresolved);
  CHECK(outcome.safe == 5);
  // It keeps that bound while it stays in flight, also when L moves on.
  outcome = tracker.apply(probe(20, {800, 801}));
  CHECK(outcome.safe == 5);
  // 800 commits; 801 was new at the probe before (bound 9).
  outcome = tracker.apply(probe(25, {801}));
  CHECK(outcome.safe == 9);
  outcome = tracker.apply(probe(25));
  CHECK(outcome.safe == 25);
}

TEST_CASE("a logged bound resolves a writer this reader never saw unmarked",
          "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  WatermarkProbe fresh = probe(50);
  fresh.writers.push_back(ProbedWriter{1200, 40});
  auto outcome = tracker.apply(fresh);
  CHECK_FALSE(outcome.unresolved);
  CHECK(outcome.safe == 40);
  // A later own-history bound (L = 50 at the previous probe) does not apply to
  // 1200 (it was marked then); a newer writer gets the better of both bounds.
  WatermarkProbe later = probe(60);
  later.writers.push_back(ProbedWriter{1200, 40});
  later.writers.push_back(ProbedWriter{1300, 45});
  outcome = tracker.apply(later);
  CHECK(outcome.safe == 40);
  WatermarkProbe done = probe(60);
  done.writers.push_back(ProbedWriter{1300, 45});
  CHECK(tracker.apply(done).safe == 50);
}

TEST_CASE("the watermark never moves back", "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  tracker.apply(probe(30));
  auto outcome = tracker.apply(probe(31, {900}));
  CHECK(outcome.safe == 30);
  outcome = tracker.apply(probe(40, {901}));  // 900 gone, 901 bounded by 31
  CHECK(outcome.safe == 31);
}

TEST_CASE("peek computes a watermark without recording the probe",
          "[eventstore][postgres][watermark]") {
  WatermarkTracker tracker;
  tracker.apply(probe(7));
  const auto peeked = tracker.peek(probe(9, {1000}));
  CHECK(peeked.safe == 7);
  CHECK(tracker.safe() == 7);
  // Not recorded: 1000 is still new relative to the probe at L = 7.
  CHECK(tracker.apply(probe(11, {1000})).safe == 7);
  CHECK(tracker.apply(probe(11)).safe == 11);
}

TEST_CASE("store parameters are kept apart from libpq's", "[eventstore][postgres][url]") {
  const auto url = repo::DatabaseUrl::parse(
      "postgres://app@db.example:5433/game?sslmode=disable&schema=game%5Fevents&notify=poll&"
      "json_data=yes&application_name=bot");
  CHECK(url.parameters() == std::vector<std::pair<std::string, std::string>>{
                                {"sslmode", "disable"}, {"application_name", "bot"}});
  CHECK(url.store_parameter("schema") == "game_events");
  CHECK(url.store_parameter("notify") == "poll");
  CHECK(url.store_parameter("json_data") == "true");

  const auto plain = repo::DatabaseUrl::parse("postgresql:///game");
  CHECK_FALSE(plain.store_parameter("schema").has_value());
  CHECK(plain.parameters().empty());
}

TEST_CASE("bad store parameters are configuration errors", "[eventstore][postgres][url]") {
  CHECK_THROWS_AS(parse_url("postgres://h/db?notify=sometimes"), InvalidArgument);
  CHECK_THROWS_AS(parse_url("postgres://h/db?json_data=maybe"), InvalidArgument);
  CHECK_THROWS_AS(parse_url("postgres://h/db?schema="), InvalidArgument);
  CHECK_THROWS_AS(parse_url("postgres://h/db?schema=%zz"), InvalidArgument);
  CHECK_THROWS_AS(parse_url("sqlite:file.db?schema=s"), InvalidArgument);
  CHECK_THROWS_AS(PostgresBackend::open(parse_url("sqlite:file.db")), InvalidArgument);
  try {
    parse_url("postgres://h/db?notify=x");
    FAIL("accepted");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::configuration);
  }
}

TEST_CASE("the migration set is qualified by its schema", "[eventstore][postgres][schema]") {
  const auto a = postgres_event_store_migrator("events_a");
  const auto b = postgres_event_store_migrator("events_b");
  CHECK(a.set_hash() != b.set_hash());
  CHECK(a.set_hash() == postgres_event_store_migrator("events_a").set_hash());
  CHECK(a.options().table == kPostgresMigrationsTable);
  CHECK(a.options().schema == "events_a");
  REQUIRE_FALSE(a.migrations().empty());
  CHECK(a.migrations().front().sql.find("\"events_a\".events") != std::string::npos);
  CHECK(postgres_lock_namespace("events_a") != postgres_lock_namespace("events_b"));
  CHECK(postgres_lock_namespace("events_a") > 0);
  CHECK(postgres_lock_namespace("events_a") < (1 << 30));
  // Leases live above every writer's lock (N << 32 | xid < 2^62).
  CHECK(postgres_subscription_lock_key("events_a", "orders", "$all") >= (std::int64_t{1} << 62));
  CHECK(postgres_subscription_lock_key("events_a", "orders", "$all") !=
        postgres_subscription_lock_key("events_b", "orders", "$all"));
  CHECK(postgres_subscription_lock_key("s", "ab", "c") !=
        postgres_subscription_lock_key("s", "a", "bc"));
  CHECK_THROWS_AS(postgres_event_store_migrations(""), InvalidArgument);
  CHECK_THROWS_AS(postgres_event_store_migrations(std::string(64, 'x')), InvalidArgument);
}

}  // namespace
}  // namespace gamebot::eventstore
