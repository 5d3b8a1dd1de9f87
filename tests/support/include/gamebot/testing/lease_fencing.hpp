#pragma once

// One scenario for every backend on which a persistent subscription's lease can
// be lost while its holder lives on (PostgreSQL: the lease connection is
// terminated; SQLite: the lock file is removed). The owner, on its own thread
// and store, delivers 1..5 and acks 1..2, so 3..5 are in flight (mid-batch)
// when `lose_lease` runs. A standby on another store must then take over and
// deliver the rest; the owner, resumed, acks 3..5 and asks for the next event.
// Every delivery is recorded with its time and lease token, and the stored
// checkpoint is read after every ack. The checks: at most one consumer
// delivers at any instant (once the standby delivered, the owner never does
// again, and tokens never go down over time), every event is delivered at
// least once, the stale owner's acks change nothing, the checkpoint never
// moves backwards, and the owner is told with a typed concurrency error.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::testing {

struct LeaseFencingDelivery {
  std::chrono::steady_clock::time_point at;
  char who;  // 'o' the first owner, 's' the standby
  eventstore::LeaseToken token;
  eventstore::StreamVersion event_number;
};

inline void check_lease_fencing(eventstore::EventStore& writer, eventstore::EventStore& owner_store,
                                eventstore::EventStore& standby_store,
                                const std::function<void()>& lose_lease) {
  using namespace std::chrono_literals;
  using eventstore::StreamVersion;
  constexpr StreamVersion kEvents = 20;
  const std::string name = "fenced";
  const std::string stream = "work";

  std::vector<eventstore::EventData> batch(static_cast<std::size_t>(kEvents));
  for (auto& e : batch) e.type = "Work";
  REQUIRE(writer.append(stream, 0, batch).ok());

  eventstore::PersistentSubscriptionOptions options;
  options.max_in_flight = 5;

  std::mutex mutex;  // guards deliveries and checkpoints
  std::vector<LeaseFencingDelivery> deliveries;
  std::vector<StreamVersion> checkpoints;
  auto record = [&](char who, std::optional<eventstore::LeaseToken> token,
                    const eventstore::RecordedEvent& e) {
    std::lock_guard lock(mutex);
    deliveries.push_back(
        {std::chrono::steady_clock::now(), who, token.value_or(-1), e.event_number});
  };
  auto sample_checkpoint = [&] {
    const auto stored = writer.backend().load_checkpoint(name, stream);
    std::lock_guard lock(mutex);
    checkpoints.push_back(stored.value_or(-1));
  };

  std::promise<void> mid_batch;
  std::promise<void> resume;
  std::optional<FaultClass> owner_fault;
  bool owner_fenced = false;
  std::string owner_failure;
  std::thread owner([&, resumed = resume.get_future()] {
    try {
      eventstore::Subscription sub = owner_store.subscribe_persistent(name, stream, options);
      const std::optional<eventstore::LeaseToken> token = sub.lease_token();
      for (StreamVersion n = 1; n <= 5; ++n) {
        auto e = sub.next(5s);
        if (!e) throw std::runtime_error("the owner got no event " + std::to_string(n));
        record('o', token, *e);
        if (n <= 2) {
          sub.ack(*e);
          sample_checkpoint();
        }
      }
      mid_batch.set_value();
      resumed.wait();
      for (StreamVersion n = 3; n <= 5; ++n) {  // stale acks: must change nothing
        sub.ack(n);
        sample_checkpoint();
      }
      try {
        if (auto e = sub.next(2s)) record('o', token, *e);
      } catch (const eventstore::SubscriptionFenced& error) {
        owner_fenced = true;
        owner_fault = error.fault();
      } catch (const Error& error) {
        owner_fault = error.fault();
      }
    } catch (const std::exception& error) {
      owner_failure = error.what();
      try {
        mid_batch.set_value();
      } catch (...) {
        // already set
      }
    }
  });

  auto mid = mid_batch.get_future();
  const bool reached = mid.wait_for(10s) == std::future_status::ready;
  std::optional<eventstore::Subscription> standby;
  std::set<StreamVersion> standby_seen;
  std::optional<eventstore::LeaseToken> standby_token;
  if (reached && owner_failure.empty()) {
    standby.emplace(standby_store.subscribe_persistent(name, stream, options));
    CHECK_FALSE(standby->next(150ms).has_value());  // the owner still holds the lease
    lose_lease();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!standby_seen.contains(kEvents) && std::chrono::steady_clock::now() < deadline) {
      auto e = standby->next(200ms);
      if (!e) continue;
      standby_token = standby->lease_token();
      record('s', standby_token, *e);
      standby_seen.insert(e->event_number);
      standby->ack(*e);
      sample_checkpoint();
    }
  }
  resume.set_value();
  owner.join();
  standby.reset();

  REQUIRE(reached);
  INFO(owner_failure);
  REQUIRE(owner_failure.empty());
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
  for (StreamVersion n = 1; n <= kEvents; ++n) CHECK(delivered.contains(n));
  CHECK(*standby_seen.begin() == 3);
  // The checkpoint never moved backwards; the stale acks left it where the standby put it.
  REQUIRE_FALSE(checkpoints.empty());
  CHECK(std::is_sorted(checkpoints.begin(), checkpoints.end()));
  CHECK(checkpoints.back() == kEvents);
  CHECK(writer.backend().load_checkpoint(name, stream) == kEvents);
  // The owner was told, with a typed concurrency error.
  CHECK(owner_fault == FaultClass::concurrency);
  CHECK(owner_fenced);
}

}  // namespace gamebot::testing
