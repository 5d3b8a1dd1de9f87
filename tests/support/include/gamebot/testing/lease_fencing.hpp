#pragma once

// One scenario for every backend on which a persistent subscription's lease can
// be lost while its holder lives on (PostgreSQL: the lease connection is
// terminated; SQLite: the lock file is removed). The owner (a thread with its
// own store, or another process) delivers 1..5 and acks 1..2, so 3..5 are in
// flight (mid-batch) when `lose_lease` runs. A standby on another store must
// then take over and deliver the rest; the owner, resumed, acks 3, 4 and 5 one
// by one and asks for the next event. Every delivery is recorded with its time
// (steady clock: CLOCK_MONOTONIC, one clock for every process of the machine)
// and lease token, and the stored checkpoint is read after every ack the test
// sees. The checks: at most one consumer delivers at any instant (once the
// standby delivered, the owner never does again, and tokens never go down over
// time), every event is delivered at least once, the stale owner's acks change
// nothing, the checkpoint never moves backwards, and the owner is told with a
// typed concurrency error.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::testing {

inline constexpr const char* kFencingSubscription = "fenced";
inline constexpr const char* kFencingStream = "work";
inline constexpr eventstore::StreamVersion kFencingEvents = 20;

// Options of both sides: five events may be in flight (a batch).
inline eventstore::PersistentSubscriptionOptions fencing_subscription_options() {
  eventstore::PersistentSubscriptionOptions options;
  options.max_in_flight = 5;
  return options;
}

struct LeaseFencingDelivery {
  std::chrono::steady_clock::time_point at;
  char who;  // 'o' the first owner, 's' the standby
  eventstore::LeaseToken token;
  eventstore::StreamVersion event_number;
};

// What the owner side reports when it is done.
struct FencingOwnerReport {
  std::vector<LeaseFencingDelivery> deliveries;
  std::optional<FaultClass> fault;  // of the error its last next() threw, if any
  bool fenced = false;              // that error was SubscriptionFenced
  std::string failure;              // the owner side could not play its part
};

// The owner side. start(): subscribe, deliver 1..5, ack 1..2, return once 3..5
// are in flight (false if that failed). finish(): ack 3, 4, 5, call next(), report.
struct FencingOwner {
  std::function<bool()> start;
  std::function<FencingOwnerReport()> finish;
};

// The owner on a thread of this process, with its own store.
class ThreadFencingOwner {
 public:
  explicit ThreadFencingOwner(eventstore::EventStore& store) : store_(store) {}
  ~ThreadFencingOwner() {
    release();
    if (thread_.joinable()) thread_.join();
  }

  FencingOwner owner() {
    return {[this] { return start(); }, [this] { return finish(); }};
  }

 private:
  bool start() {
    using namespace std::chrono_literals;
    thread_ = std::thread([this, resumed = resume_.get_future()]() mutable { run(resumed); });
    return mid_batch_.get_future().wait_for(10s) == std::future_status::ready &&
           report_.failure.empty();
  }

  FencingOwnerReport finish() {
    release();
    thread_.join();
    return report_;
  }

  void release() {
    if (!released_) resume_.set_value();
    released_ = true;
  }

  void run(std::future<void>& resumed) {
    using namespace std::chrono_literals;
    bool at_mid_batch = false;
    try {
      eventstore::Subscription sub = store_.subscribe_persistent(
          kFencingSubscription, kFencingStream, fencing_subscription_options());
      const eventstore::LeaseToken token = sub.lease_token().value_or(-1);
      auto record = [&](const eventstore::RecordedEvent& e) {
        report_.deliveries.push_back(
            {std::chrono::steady_clock::now(), 'o', token, e.event_number});
      };
      for (eventstore::StreamVersion n = 1; n <= 5; ++n) {
        auto e = sub.next(5s);
        if (!e) throw std::runtime_error("the owner got no event " + std::to_string(n));
        record(*e);
        if (n <= 2) sub.ack(*e);
      }
      at_mid_batch = true;
      mid_batch_.set_value();
      resumed.wait();
      for (eventstore::StreamVersion n = 3; n <= 5; ++n) sub.ack(n);  // stale: must change nothing
      try {
        if (auto e = sub.next(2s)) record(*e);
      } catch (const eventstore::SubscriptionFenced& error) {
        report_.fenced = true;
        report_.fault = error.fault();
      } catch (const Error& error) {
        report_.fault = error.fault();
      }
    } catch (const std::exception& error) {
      report_.failure = error.what();
      if (!at_mid_batch) mid_batch_.set_value();
    }
  }

  eventstore::EventStore& store_;
  std::promise<void> mid_batch_;
  std::promise<void> resume_;
  bool released_ = false;
  FencingOwnerReport report_;
  std::thread thread_;
};

inline void check_lease_fencing(eventstore::EventStore& writer, const FencingOwner& owner,
                                eventstore::EventStore& standby_store,
                                const std::function<void()>& lose_lease) {
  using namespace std::chrono_literals;
  using eventstore::StreamVersion;
  const std::string name = kFencingSubscription;
  const std::string stream = kFencingStream;

  std::vector<eventstore::EventData> batch(static_cast<std::size_t>(kFencingEvents));
  for (auto& e : batch) e.type = "Work";
  REQUIRE(writer.append(stream, 0, batch).ok());

  std::vector<StreamVersion> checkpoints;
  auto sample_checkpoint = [&] {
    checkpoints.push_back(writer.backend().load_checkpoint(name, stream).value_or(-1));
  };

  const bool reached = owner.start();
  std::vector<LeaseFencingDelivery> deliveries;
  std::set<StreamVersion> standby_seen;
  std::optional<eventstore::LeaseToken> standby_token;
  if (reached) {
    sample_checkpoint();  // the owner's acks of 1 and 2
    std::optional<eventstore::Subscription> standby;
    standby.emplace(
        standby_store.subscribe_persistent(name, stream, fencing_subscription_options()));
    CHECK_FALSE(standby->next(150ms).has_value());  // the owner still holds the lease
    lose_lease();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!standby_seen.contains(kFencingEvents) && std::chrono::steady_clock::now() < deadline) {
      auto e = standby->next(200ms);
      if (!e) continue;
      standby_token = standby->lease_token();
      deliveries.push_back(
          {std::chrono::steady_clock::now(), 's', standby_token.value_or(-1), e->event_number});
      standby_seen.insert(e->event_number);
      standby->ack(*e);
      sample_checkpoint();
    }
  }
  const FencingOwnerReport report = owner.finish();
  sample_checkpoint();  // after the stale acks
  deliveries.insert(deliveries.end(), report.deliveries.begin(), report.deliveries.end());

  REQUIRE(reached);
  INFO(report.failure);
  REQUIRE(report.failure.empty());
  REQUIRE(standby_token.has_value());

  // At most one consumer delivers at any instant.
  std::sort(deliveries.begin(), deliveries.end(),
            [](const auto& a, const auto& b) { return a.at < b.at; });
  bool standby_started = false;
  eventstore::LeaseToken last_token = 0;
  std::set<StreamVersion> delivered;
  for (const auto& d : deliveries) {
    INFO("delivery of " << d.event_number << " by " << d.who << " with token " << d.token);
    if (d.who == 's') standby_started = true;
    CHECK_FALSE((standby_started && d.who == 'o'));
    CHECK(d.token >= last_token);
    last_token = std::max(last_token, d.token);
    delivered.insert(d.event_number);
  }
  // Every event at least once, and the standby resumed after the owner's last ack.
  for (StreamVersion n = 1; n <= kFencingEvents; ++n) CHECK(delivered.contains(n));
  CHECK(*standby_seen.begin() == 3);
  // The checkpoint never moved backwards; the stale acks left it where the standby put it.
  CHECK(checkpoints.front() == 2);
  CHECK(std::is_sorted(checkpoints.begin(), checkpoints.end()));
  CHECK(checkpoints.back() == kFencingEvents);
  // The owner was told, with a typed concurrency error.
  CHECK(report.fault == FaultClass::concurrency);
  CHECK(report.fenced);
}

}  // namespace gamebot::testing
