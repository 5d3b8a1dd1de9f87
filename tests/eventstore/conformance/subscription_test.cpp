// Conformance: transient and persistent subscriptions through the pull API,
// driven from one thread (the threaded cases are in concurrency_test.cpp).

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

using namespace std::chrono_literals;

// Long enough for any backend to deliver an event that is already committed.
constexpr auto kDeliver = 5s;
// How long the suite waits to conclude that nothing (more) is delivered.
constexpr auto kNothing = 150ms;

std::vector<StreamVersion> take(Subscription& sub, std::size_t n, bool ack = true) {
  std::vector<StreamVersion> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto e = sub.next(kDeliver);
    if (!e) break;
    out.push_back(e->event_number);
    if (ack) sub.ack(*e);
  }
  return out;
}

PersistentSubscriptionOptions from(StartFrom start) {
  PersistentSubscriptionOptions options;
  options.start_from = start;
  return options;
}

TEST_CASE("a transient subscription delivers only events committed after it was created",
          "[eventstore][subscription][transient]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  Subscription all = f.store.subscribe(std::string(kAllStream));
  Subscription stream = f.store.subscribe("s");
  CHECK_FALSE(all.persistent());
  CHECK_FALSE(all.next(kNothing).has_value());
  REQUIRE(f.store.append("s", 3, events(2, "Live")).ok());
  REQUIRE(f.store.append("t", 0, events(1, "Other")).ok());
  CHECK(take(all, 3) == std::vector<StreamVersion>{4, 5, 6});
  CHECK(take(stream, 2) == std::vector<StreamVersion>{4, 5});
  CHECK_FALSE(all.next(kNothing).has_value());
  CHECK_FALSE(stream.next(kNothing).has_value());
}

TEST_CASE("a transient subscription from the origin replays the stream, then goes live",
          "[eventstore][subscription][transient][start_from]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  SubscriptionOptions options;
  options.start_from = StartFrom::origin();
  Subscription sub = f.store.subscribe("s", options);
  CHECK(take(sub, 3) == range(1, 3));
  CHECK_FALSE(sub.next(kNothing).has_value());
  REQUIRE(f.store.append("s", 3, events(1)).ok());
  CHECK(take(sub, 1) == range(4, 4));
  CHECK(sub.checkpoint() == std::nullopt);  // nothing persisted
  CHECK_FALSE(f.store.backend().load_checkpoint("", "s").has_value());
}

TEST_CASE("a transient subscription from a position replays after it, and current replays nothing",
          "[eventstore][subscription][transient][start_from]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  SubscriptionOptions after_one;
  after_one.start_from = StartFrom::position(1);
  Subscription from_position = f.store.subscribe("s", after_one);
  SubscriptionOptions now;
  now.start_from = StartFrom::current();
  Subscription from_current = f.store.subscribe("s", now);
  SubscriptionOptions all_from_two;
  all_from_two.start_from = StartFrom::position(2);
  Subscription all = f.store.subscribe(std::string(kAllStream), all_from_two);
  REQUIRE(f.store.append("s", 3, events(1)).ok());
  CHECK(take(from_position, 3) == range(2, 4));
  CHECK(take(from_current, 1) == range(4, 4));
  CHECK(take(all, 2) == range(3, 4));
  CHECK_FALSE(from_position.next(kNothing).has_value());
  CHECK_FALSE(from_current.next(kNothing).has_value());
  SubscriptionOptions negative;
  negative.start_from = StartFrom::position(-1);
  CHECK_THROWS_AS(f.store.subscribe("s", negative), InvalidArgument);
}

TEST_CASE("transient subscriptions from the origin rebuild a projection in memory, repeatedly",
          "[eventstore][subscription][transient][start_from]") {
  Fixture f;
  REQUIRE(f.store.append("a", 0, events(2)).ok());
  REQUIRE(f.store.append("b", 0, events(3)).ok());
  SubscriptionOptions options;
  options.start_from = StartFrom::origin();
  for (int rebuild = 0; rebuild < 2; ++rebuild) {
    Subscription sub = f.store.subscribe(std::string(kAllStream), options);
    std::map<std::string, int> counts;
    for (int i = 0; i < 5; ++i) {
      auto e = sub.next(kDeliver);
      REQUIRE(e.has_value());
      ++counts[std::string(e->stream_id)];
    }
    CHECK(counts == std::map<std::string, int>{{"a", 2}, {"b", 3}});
    CHECK_FALSE(sub.next(kNothing).has_value());
  }
}

TEST_CASE("a transient subscription to a stream that does not exist yet sees its creation",
          "[eventstore][subscription][transient]") {
  Fixture f;
  Subscription sub = f.store.subscribe("later");
  REQUIRE(f.store.append("else", 0, events(2)).ok());
  REQUIRE(f.store.append("later", 0, events(2)).ok());
  const auto e = sub.next(kDeliver);
  REQUIRE(e.has_value());
  CHECK(e->stream_id == "later");
  CHECK(e->event_number == 1);
  CHECK(take(sub, 1) == std::vector<StreamVersion>{2});
}

TEST_CASE("a selector filters what a transient subscription delivers",
          "[eventstore][subscription][transient][selector]") {
  Fixture f;
  SubscriptionOptions options;
  options.selector = [](const RecordedEvent& e) { return e.type == "Wanted"; };
  Subscription sub = f.store.subscribe(std::string(kAllStream), options);
  REQUIRE(f.store
              .append("s", ExpectedVersion::any(),
                      {event("Unwanted"), event("Wanted", "1"), event("Unwanted"),
                       event("Wanted", "2")})
              .ok());
  auto first = sub.next(kDeliver);
  auto second = sub.next(kDeliver);
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->data == "1");
  CHECK(second->data == "2");
  CHECK_FALSE(sub.next(kNothing).has_value());
}

TEST_CASE("subscriptions step over hard-deleted events", "[eventstore][subscription][hard]") {
  Fixture f;
  Subscription transient = f.store.subscribe(std::string(kAllStream));
  REQUIRE(f.store.append("gone", 0, events(2, "Gone")).ok());
  REQUIRE(f.store.append("kept", 0, events(1, "Kept")).ok());
  REQUIRE(f.store.delete_stream("gone", 2, DeleteMode::hard).ok());
  Subscription persistent = f.store.subscribe_persistent("p", std::string(kAllStream));
  const auto t = transient.next(kDeliver);
  const auto p = persistent.next(kDeliver);
  REQUIRE(t.has_value());
  REQUIRE(p.has_value());
  CHECK(t->global_position == 3);
  CHECK(p->global_position == 3);
  persistent.ack(*p);
  CHECK(persistent.checkpoint() == 3);
}

TEST_CASE("a persistent subscription catches up from the origin, then delivers live events",
          "[eventstore][subscription][persistent]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(5)).ok());
  Subscription sub = f.store.subscribe_persistent("catch-up", std::string(kAllStream));
  CHECK(sub.persistent());
  CHECK(sub.name() == "catch-up");
  CHECK(sub.stream_id() == kAllStream);
  CHECK(take(sub, 5) == range(1, 5));
  CHECK_FALSE(sub.next(kNothing).has_value());
  REQUIRE(f.store.append("s", 5, events(3)).ok());
  CHECK(take(sub, 3) == range(6, 8));
  CHECK(sub.checkpoint() == 8);
  CHECK_FALSE(sub.next(kNothing).has_value());
}

TEST_CASE("persistent start_from: origin, current and an exclusive position",
          "[eventstore][subscription][persistent][start_from]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(5)).ok());
  REQUIRE(f.store.append("t", 0, events(5)).ok());

  Subscription origin = f.store.subscribe_persistent("origin", "s", from(StartFrom::origin()));
  Subscription current = f.store.subscribe_persistent("current", "s", from(StartFrom::current()));
  Subscription after3 = f.store.subscribe_persistent("after3", "s", from(StartFrom::position(3)));
  Subscription all_after7 =
      f.store.subscribe_persistent("all7", std::string(kAllStream), from(StartFrom::position(7)));
  CHECK(take(origin, 5) == range(1, 5));
  CHECK_FALSE(current.next(kNothing).has_value());
  CHECK(take(after3, 2) == range(4, 5));
  CHECK(take(all_after7, 3) == range(8, 10));

  REQUIRE(f.store.append("s", 5, events(1)).ok());
  CHECK(take(current, 1) == std::vector<StreamVersion>{6});
  CHECK(take(after3, 1) == std::vector<StreamVersion>{6});
  CHECK(take(origin, 1) == std::vector<StreamVersion>{6});
}

TEST_CASE("start_from applies only the first time, later subscribes resume from the checkpoint",
          "[eventstore][subscription][persistent][start_from]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(5)).ok());
  {
    Subscription sub = f.store.subscribe_persistent("once", "s", from(StartFrom::origin()));
    CHECK(take(sub, 2) == range(1, 2));
  }
  Subscription again = f.store.subscribe_persistent("once", "s", from(StartFrom::current()));
  CHECK(take(again, 3) == range(3, 5));

  // start_from current is fixed when the subscription is created, not when it restarts.
  {
    Subscription sub = f.store.subscribe_persistent("fixed", "s", from(StartFrom::current()));
    CHECK_FALSE(sub.next(kNothing).has_value());
  }
  REQUIRE(f.store.append("s", 5, events(2)).ok());
  Subscription resumed = f.store.subscribe_persistent("fixed", "s", from(StartFrom::current()));
  CHECK(take(resumed, 2) == range(6, 7));
}

TEST_CASE("a restarted persistent subscriber resumes after its last ack (at-least-once)",
          "[eventstore][subscription][persistent][resume]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(6)).ok());
  {
    Subscription sub = f.store.subscribe_persistent("resume", "s");
    CHECK(take(sub, 3) == range(1, 3));
    const auto unacked = sub.next(kDeliver);
    REQUIRE(unacked.has_value());
    CHECK(unacked->event_number == 4);
    CHECK(sub.checkpoint() == 3);
  }
  Subscription sub = f.store.subscribe_persistent("resume", "s");
  CHECK(sub.checkpoint() == 3);
  CHECK(take(sub, 3) == range(4, 6));
}

TEST_CASE("a persistent subscription resumes after the store is reopened",
          "[eventstore][subscription][persistent][resume][reopen]") {
  auto backend = make_conformance_backend();
  {
    EventStore store = backend->open(suite_options());
    REQUIRE(store.append("s", 0, events(4)).ok());
    Subscription sub = store.subscribe_persistent("durable", "s");
    CHECK(take(sub, 2) == range(1, 2));
    REQUIRE(sub.next(kDeliver).has_value());  // 3: delivered, never acked
  }
  EventStore store = backend->open(suite_options());
  REQUIRE(store.append("s", 4, events(1)).ok());
  Subscription sub = store.subscribe_persistent("durable", "s", from(StartFrom::current()));
  CHECK(take(sub, 3) == range(3, 5));
  CHECK(sub.checkpoint() == 5);
}

TEST_CASE("an ack covers the events delivered before it, and later acks of them change nothing",
          "[eventstore][subscription][persistent][ack]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(5)).ok());
  PersistentSubscriptionOptions options;
  options.max_in_flight = 3;
  {
    Subscription sub = f.store.subscribe_persistent("ooo", "s", options);
    const auto got = take(sub, 3, false);
    REQUIRE(got == range(1, 3));
    CHECK_FALSE(sub.next(kNothing).has_value());  // three in flight: the limit
    sub.ack(99);                                  // unknown: ignored, it acks nothing
    CHECK(sub.checkpoint() == 0);
    sub.ack(2);  // covers 1
    CHECK(sub.checkpoint() == 2);
    sub.ack(1);  // already covered: nothing changes
    CHECK(sub.checkpoint() == 2);
    sub.ack(3);
    CHECK(sub.checkpoint() == 3);
    const auto fourth = sub.next(kDeliver);
    REQUIRE(fourth.has_value());
    CHECK(fourth->event_number == 4);
  }
  Subscription sub = f.store.subscribe_persistent("ooo", "s", options);
  CHECK(take(sub, 2) == range(4, 5));
}

TEST_CASE("acking a batch's last event acks the batch: a restart redelivers only what follows",
          "[eventstore][subscription][persistent][ack]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(6)).ok());
  PersistentSubscriptionOptions options;
  options.max_in_flight = 3;
  {
    Subscription sub = f.store.subscribe_persistent("batch", "s", options);
    REQUIRE(take(sub, 3, false) == range(1, 3));
    sub.ack(3);
  }
  Subscription sub = f.store.subscribe_persistent("batch", "s", options);
  CHECK(sub.checkpoint() == 3);
  CHECK(take(sub, 3) == range(4, 6));
  CHECK_FALSE(sub.next(kNothing).has_value());
}

TEST_CASE("an ack covers only what was delivered to the same subscriber",
          "[eventstore][subscription][persistent][ack]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 2;
  options.max_in_flight = 2;
  Subscription a = f.store.subscribe_persistent("pair", "s", options);
  Subscription b = f.store.subscribe_persistent("pair", "s", options);
  const auto first = a.next(kDeliver);
  const auto second = b.next(kDeliver);
  const auto third = a.next(kDeliver);
  REQUIRE((first && second && third));
  REQUIRE(first->event_number == 1);
  REQUIRE(second->event_number == 2);
  REQUIRE(third->event_number == 3);
  a.ack(*third);  // covers a's 1 and 3, not b's 2
  CHECK(a.checkpoint() == 1);
  b.ack(*second);
  CHECK(a.checkpoint() == 3);
}

TEST_CASE("checkpoint_after stores a quiet subscription's progress within the bound",
          "[eventstore][subscription][persistent][checkpoint]") {
  auto backend = make_conformance_backend();
  EventStore store = backend->open(suite_options());
  EventStore observer = backend->open(suite_options());
  REQUIRE(store.append("s", 0, events(3)).ok());
  PersistentSubscriptionOptions options;
  options.checkpoint_every = 100;  // the count alone would never store it
  options.checkpoint_after = 50ms;
  Subscription sub = store.subscribe_persistent("quiet", "s", options);
  REQUIRE(take(sub, 3) == range(1, 3));
  // A quiet subscriber waits in next(); the store must appear within a bound.
  const auto deadline = std::chrono::steady_clock::now() + kDeliver;
  std::optional<StreamVersion> stored;
  while (stored != 3 && std::chrono::steady_clock::now() < deadline) {
    CHECK_FALSE(sub.next(20ms).has_value());
    stored = observer.backend().load_checkpoint("quiet", "s");
  }
  CHECK(stored == 3);
  CHECK(sub.checkpoint() == 3);
}

TEST_CASE("checkpoint_after = 0 leaves storing to checkpoint_every",
          "[eventstore][subscription][persistent][checkpoint]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  PersistentSubscriptionOptions options;
  options.checkpoint_every = 3;
  options.checkpoint_after = 0ms;
  Subscription sub = f.store.subscribe_persistent("counted", "s", options);
  REQUIRE(take(sub, 2) == range(1, 2));
  CHECK(f.store.backend().load_checkpoint("counted", "s") == 0);
  REQUIRE(take(sub, 1) == range(3, 3));
  CHECK(f.store.backend().load_checkpoint("counted", "s") == 3);
}

TEST_CASE("a checkpoint write with an older lease token is refused, and checkpoints never go back",
          "[eventstore][subscription][persistent][fencing]") {
  Fixture f;
  Backend& backend = f.store.backend();
  auto first = backend.try_acquire_subscription("fence", "s");
  REQUIRE(first != nullptr);
  const LeaseToken old_token = first->token();
  CHECK(old_token > kNoLease);
  CHECK(backend.store_checkpoint("fence", "s", 5, old_token));
  first.reset();
  auto second = backend.try_acquire_subscription("fence", "s");
  REQUIRE(second != nullptr);
  CHECK(second->token() > old_token);
  // Taking the lease fenced the old token before the new owner wrote anything.
  CHECK_FALSE(backend.store_checkpoint("fence", "s", 9, old_token));
  CHECK_FALSE(backend.store_checkpoint("fence", "s", 9, kNoLease));
  CHECK(backend.load_checkpoint("fence", "s") == 5);
  CHECK(backend.store_checkpoint("fence", "s", 3, second->token()));  // backwards: kept at 5
  CHECK(backend.load_checkpoint("fence", "s") == 5);
  CHECK(backend.store_checkpoint("fence", "s", 7, second->token()));
  CHECK(backend.load_checkpoint("fence", "s") == 7);
  // Another subscription's lease is independent, and its token is newer still.
  auto other = backend.try_acquire_subscription("fence", "t");
  REQUIRE(other != nullptr);
  CHECK(other->token() > second->token());
  CHECK(backend.store_checkpoint("fence", "s", 8, second->token()));
  CHECK(backend.load_checkpoint("fence", "s") == 8);
}

TEST_CASE("max_in_flight holds back delivery until an ack",
          "[eventstore][subscription][persistent]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  Subscription sub = f.store.subscribe_persistent("one-at-a-time", "s");
  auto first = sub.next(kDeliver);
  REQUIRE(first.has_value());
  CHECK_FALSE(sub.next(kNothing).has_value());
  sub.ack(*first);
  auto second = sub.next(kDeliver);
  REQUIRE(second.has_value());
  CHECK(second->event_number == 2);
}

TEST_CASE("a persistent selector delivers matching events and counts the rest as acked",
          "[eventstore][subscription][persistent][selector]") {
  Fixture f;
  PersistentSubscriptionOptions options;
  options.selector = [](const RecordedEvent& e) { return e.type == "X"; };
  REQUIRE(
      f.store.append("s", 0, {event("X"), event("Y"), event("Y"), event("X"), event("Y")}).ok());
  Subscription sub = f.store.subscribe_persistent("selective", "s", options);
  CHECK(take(sub, 2) == std::vector<StreamVersion>{1, 4});
  CHECK(sub.checkpoint() == 5);
  CHECK_FALSE(sub.next(kNothing).has_value());
}

TEST_CASE("partition_by gives each partition to one subscriber, in order",
          "[eventstore][subscription][persistent][partition]") {
  Fixture f;
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 2;
  options.max_in_flight = 100;
  options.partition_by = [](const RecordedEvent& e) { return std::string(e.stream_id); };
  for (int round = 0; round < 5; ++round) {
    for (int p = 0; p < 4; ++p) {
      REQUIRE(f.store.append("p" + std::to_string(p), ExpectedVersion::any(), event("E")).ok());
    }
  }
  Subscription a = f.store.subscribe_persistent("parts", std::string(kAllStream), options);
  Subscription b = f.store.subscribe_persistent("parts", std::string(kAllStream), options);

  std::map<std::string, std::vector<std::pair<char, StreamVersion>>> seen;
  std::vector<RecordedEvent> delivered;
  for (int spins = 0; delivered.size() < 20 && spins < 100; ++spins) {
    for (auto [sub, name] : {std::pair{&a, 'a'}, std::pair{&b, 'b'}}) {
      while (auto e = sub->next(20ms)) {
        seen[std::string(e->stream_id)].emplace_back(name, e->stream_version);
        delivered.push_back(*e);
      }
    }
  }
  REQUIRE(delivered.size() == 20);
  std::set<char> subscribers_used;
  for (const auto& [partition, list] : seen) {
    INFO("partition " << partition);
    REQUIRE(list.size() == 5);
    for (std::size_t i = 0; i < list.size(); ++i) {
      CHECK(list[i].first == list[0].first);                       // one subscriber per partition
      CHECK(list[i].second == static_cast<StreamVersion>(i + 1));  // in order
    }
    subscribers_used.insert(list[0].first);
  }
  CHECK(subscribers_used.size() == 2);  // the work was shared
  for (const auto& e : delivered) {
    a.ack(e);
    b.ack(e);
  }
  CHECK(a.checkpoint() == 20);
}

TEST_CASE("a subscriber joining when every partition is taken gets its share of the old keys",
          "[eventstore][subscription][persistent][partition][rebalance]") {
  Fixture f;
  constexpr int kKeys = 100;
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 2;
  options.max_in_flight = 2 * kKeys;
  options.partition_by = [](const RecordedEvent& e) { return std::string(e.type); };
  auto round = [&](int seq) {
    std::vector<EventData> batch;
    for (int k = 0; k < kKeys; ++k)
      batch.push_back(event("key-" + std::to_string(k), std::to_string(seq)));
    REQUIRE(f.store.append("keys", ExpectedVersion::any(), batch).ok());
  };
  // Drains what `sub` may take now: the keys it got, with the data delivered.
  auto drain = [](Subscription& sub, std::vector<RecordedEvent>& got) {
    std::set<std::string> keys;
    while (auto e = sub.next(kNothing)) {
      keys.insert(std::string(e->type));
      got.push_back(*e);
    }
    return keys;
  };

  round(1);
  Subscription first = f.store.subscribe_persistent("rebalance", "keys", options);
  std::vector<RecordedEvent> first_got;
  REQUIRE(drain(first, first_got).size() == kKeys);  // alone, it holds every partition
  CHECK(first.stats().tracked_partitions == kKeys);
  CHECK(first.stats().in_flight == kKeys);

  round(2);
  Subscription newcomer = f.store.subscribe_persistent("rebalance", "keys", options);
  std::vector<RecordedEvent> newcomer_got;
  // Every partition has an un-acked event at `first`: none moves yet, and
  // `first` keeps only the partitions it still owns.
  CHECK(drain(newcomer, newcomer_got).empty());
  const std::set<std::string> kept = drain(first, first_got);
  CHECK(kept.size() < kKeys);
  CHECK(drain(newcomer, newcomer_got).empty());

  // One cumulative ack releases them all; the moved partitions go on at the newcomer.
  REQUIRE_FALSE(first_got.empty());
  first.ack(first_got.back());
  CHECK(first.stats().tracked_partitions == 0);
  const std::set<std::string> moved = drain(newcomer, newcomer_got);
  CHECK(moved.size() == kKeys - kept.size());
  for (const auto& key : moved) CHECK_FALSE(kept.contains(key));
  for (const auto& e : newcomer_got) CHECK(e.data == "2");  // after the acked event of its key
  CHECK(drain(first, first_got).empty());
  CHECK(newcomer.stats().tracked_partitions == moved.size());

  REQUIRE_FALSE(newcomer_got.empty());
  newcomer.ack(newcomer_got.back());
  const SubscriptionStats idle = newcomer.stats();
  CHECK(idle.subscribers == 2);
  CHECK(idle.in_flight == 0);
  CHECK(idle.tracked_partitions == 0);  // no entry per key seen once nothing is in flight
  CHECK(newcomer.checkpoint() == 2 * kKeys);
}

TEST_CASE("the concurrency limit caps subscribers per subscription name",
          "[eventstore][subscription][persistent]") {
  Fixture f;
  Subscription only = f.store.subscribe_persistent("single", "s");
  CHECK_THROWS_AS(f.store.subscribe_persistent("single", "s"), SubscriptionLimitReached);
  Subscription other_stream = f.store.subscribe_persistent("single", "t");  // another key
  PersistentSubscriptionOptions two;
  two.concurrency_limit = 2;
  Subscription a = f.store.subscribe_persistent("double", "s", two);
  Subscription b = f.store.subscribe_persistent("double", "s", two);
  try {
    f.store.subscribe_persistent("double", "s", two);
    FAIL("a third subscriber was accepted");
  } catch (const SubscriptionLimitReached& error) {
    CHECK(error.fault() == FaultClass::concurrency);
  }
}

TEST_CASE("a departing subscriber's un-acked events go to the remaining subscriber",
          "[eventstore][subscription][persistent]") {
  Fixture f;
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 2;
  options.max_in_flight = 2;
  REQUIRE(f.store.append("s", 0, events(4)).ok());
  Subscription stays = f.store.subscribe_persistent("handover", "s", options);
  auto leaving =
      std::make_unique<Subscription>(f.store.subscribe_persistent("handover", "s", options));
  const auto one = leaving->next(kDeliver);
  const auto two = leaving->next(kDeliver);
  REQUIRE(one.has_value());
  REQUIRE(two.has_value());
  leaving.reset();
  std::vector<StreamVersion> got;
  for (int i = 0; i < 4; ++i) {
    auto e = stays.next(kDeliver);
    REQUIRE(e.has_value());
    got.push_back(e->event_number);
    stays.ack(*e);
  }
  std::sort(got.begin(), got.end());
  CHECK(got == range(1, 4));
  CHECK(stays.checkpoint() == 4);
}

TEST_CASE("wait_for skips to the first matching event and acks the skipped ones",
          "[eventstore][subscription][wait_for]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, {event("A"), event("B"), event("Target", "t"), event("C")}).ok());
  Subscription sub = f.store.subscribe_persistent("waiter", "s");
  const auto found =
      sub.wait_for([](const RecordedEvent& e) { return e.type == "Target"; }, kDeliver);
  REQUIRE(found.has_value());
  CHECK(found->data == "t");
  sub.ack(*found);
  CHECK(sub.checkpoint() == 3);
  CHECK_FALSE(sub.wait_for([](const RecordedEvent& e) { return e.type == "Never"; }, kNothing));

  Subscription live = f.store.subscribe(std::string(kAllStream));
  REQUIRE(f.store.append("s", ExpectedVersion::any(), {event("X"), event("Y", "y")}).ok());
  const auto y = live.wait_for([](const RecordedEvent& e) { return e.type == "Y"; }, kDeliver);
  REQUIRE(y.has_value());
  CHECK(y->data == "y");
}

TEST_CASE("deleting a persistent subscription forgets its checkpoint",
          "[eventstore][subscription][persistent]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  {
    Subscription sub = f.store.subscribe_persistent("forget", "s");
    CHECK(take(sub, 3) == range(1, 3));
  }
  CHECK(f.store.delete_subscription("forget", "s"));
  CHECK_FALSE(f.store.delete_subscription("forget", "s"));
  Subscription sub = f.store.subscribe_persistent("forget", "s");
  CHECK(take(sub, 1) == std::vector<StreamVersion>{1});
}

TEST_CASE("stored subscriptions are listed with checkpoint, lease token, holder and lag",
          "[eventstore][subscription][persistent][admin]") {
  auto backend = make_conformance_backend();
  EventStore first = backend->open(suite_options());
  EventStore second = backend->open(suite_options());
  CHECK(first.list_subscriptions().empty());
  REQUIRE(first.append("s", 0, events(3)).ok());
  REQUIRE(first.append("t", 0, events(2)).ok());
  Subscription alpha = first.subscribe_persistent("alpha", "s");
  CHECK(take(alpha, 2) == range(1, 2));
  {
    Subscription beta = first.subscribe_persistent("beta", std::string(kAllStream));
    CHECK(take(beta, 1) == range(1, 1));
  }
  // Listed from another store (another process, for the SQL backends).
  const std::vector<SubscriptionInfo> listed = second.list_subscriptions();
  REQUIRE(listed.size() == 2);
  const SubscriptionInfo& held = listed[0];
  CHECK(held.stored.name == "alpha");
  CHECK(held.stored.stream_id == "s");
  CHECK(held.stored.checkpoint == 2);
  CHECK(held.stored.lease_token == alpha.lease_token());
  CHECK(held.stored.held);
  CHECK(held.head == 3);
  CHECK(held.lag == 1);
  const SubscriptionInfo& idle = listed[1];
  CHECK(idle.stored.name == "beta");
  CHECK(idle.stored.stream_id == kAllStream);
  CHECK(idle.stored.checkpoint == 1);
  CHECK(idle.stored.lease_token > kNoLease);
  CHECK_FALSE(idle.stored.held);
  CHECK(idle.stored.holder.empty());
  CHECK(idle.head == 5);
  CHECK(idle.lag == 4);
  // Caught up: no lag; a stream that is gone has none either.
  CHECK(take(alpha, 1) == range(3, 3));
  REQUIRE(first.delete_stream("s", 3, DeleteMode::hard).ok());
  const std::vector<SubscriptionInfo> later = second.list_subscriptions();
  REQUIRE(later.size() == 2);
  CHECK(later[0].stored.checkpoint == 3);
  CHECK(later[0].head == 0);
  CHECK(later[0].lag == 0);
}

TEST_CASE("deleting a held subscription is refused and keeps it, and once released it is deleted",
          "[eventstore][subscription][persistent][admin]") {
  auto backend = make_conformance_backend();
  EventStore first = backend->open(suite_options());
  EventStore second = backend->open(suite_options());
  REQUIRE(first.append("s", 0, events(3)).ok());
  auto owner = std::make_unique<Subscription>(first.subscribe_persistent("held", "s"));
  CHECK(take(*owner, 2) == range(1, 2));
  CHECK_THROWS_AS(second.delete_subscription("held", "s"), SubscriptionHeld);
  CHECK_THROWS_AS(first.delete_subscription("held", "s"), SubscriptionHeld);
  try {
    second.delete_subscription("held", "s");
  } catch (const SubscriptionHeld& error) {
    CHECK(error.fault() == FaultClass::concurrency);
    CHECK(error.message().find("'held'") != std::string::npos);
  }
  CHECK(second.backend().load_checkpoint("held", "s") == 2);
  // The owner goes on unharmed: its next ack is stored.
  CHECK(take(*owner, 1) == range(3, 3));
  CHECK(second.backend().load_checkpoint("held", "s") == 3);
  owner.reset();
  CHECK(second.delete_subscription("held", "s"));
  CHECK(second.list_subscriptions().empty());
  CHECK_FALSE(second.backend().load_checkpoint("held", "s").has_value());
  // Deleted, it starts over from start_from.
  Subscription again = first.subscribe_persistent("held", "s");
  CHECK(take(again, 1) == range(1, 1));
}

TEST_CASE("a subscription owned by another store waits until it is released",
          "[eventstore][subscription][persistent][ownership]") {
  auto backend = make_conformance_backend();
  EventStore first = backend->open(suite_options());
  EventStore second = backend->open(suite_options());
  REQUIRE(first.append("s", 0, events(3)).ok());
  auto owner = std::make_unique<Subscription>(first.subscribe_persistent("owned", "s"));
  CHECK(take(*owner, 1) == std::vector<StreamVersion>{1});
  Subscription standby = second.subscribe_persistent("owned", "s");
  CHECK_FALSE(standby.next(kNothing).has_value());
  owner.reset();
  CHECK(take(standby, 2) == range(2, 3));
}

TEST_CASE("a persistent subscription to a stream of links counts in link versions",
          "[eventstore][subscription][persistent][link]") {
  Fixture f;
  REQUIRE(f.store.append("a", 0, events(3)).ok());
  const auto a = f.store.read_stream_forward("a").events;
  REQUIRE(f.store.link("l", 0, std::vector<RecordedEvent>{a[2], a[0]}).ok());
  Subscription sub = f.store.subscribe_persistent("links", "l");
  auto first = sub.next(kDeliver);
  REQUIRE(first.has_value());
  CHECK(first->event_number == 1);
  CHECK(first->stream_version == 3);
  sub.ack(*first);
  auto second = sub.next(kDeliver);
  REQUIRE(second.has_value());
  CHECK(second->event_number == 2);
  CHECK(second->stream_version == 1);
}

TEST_CASE("cancel makes a waiting next return at once", "[eventstore][subscription]") {
  Fixture f;
  Subscription sub = f.store.subscribe(std::string(kAllStream));
  sub.cancel();
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(sub.next(10s).has_value());
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
