// Conformance, threaded cases (labelled `concurrency`, run under ThreadSanitizer):
// the append race, catch-up/live seams with racing appends, callback workers,
// partitioned subscribers on their own threads (also joining and leaving under
// load), readers racing writers.

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeliver = 10s;

// Catch2 assertions are not thread-safe: threads record failures here and the
// test thread checks that there were none.
class ThreadFailures {
 public:
  void add(std::string failure) {
    std::lock_guard lock(mutex_);
    failures_.push_back(std::move(failure));
  }
  std::vector<std::string> list() const {
    std::lock_guard lock(mutex_);
    return failures_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> failures_;
};

// Waits until `done` holds or `limit` passes; true if it holds.
template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST_CASE("8 threads x 2,000 appends at exact versions on 50 streams lose and duplicate nothing",
          "[eventstore][concurrency][race]") {
  Fixture f;
  constexpr int kThreads = 8;
  constexpr int kAppendsPerThread = 2'000;
  constexpr int kStreams = 50;
  std::atomic<long> conflicts{0};
  std::atomic<long> successes{0};
  std::mutex ids_mutex;
  std::set<Uuid> accepted_ids;
  ThreadFailures failures;

  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) * 7919u + 1u);
      std::vector<StreamVersion> known(kStreams, 0);  // this thread's idea of each version
      std::vector<Uuid> mine;
      for (int i = 0; i < kAppendsPerThread; ++i) {
        const int s = static_cast<int>(random() % kStreams);
        EventData e = event("Raced", std::to_string(t) + ":" + std::to_string(i));
        e.id = Uuid::v7();
        const AppendResult r = f.store.append("race-" + std::to_string(s), known[s], e);
        if (r.ok()) {
          known[s] = r.version;
          ++successes;
          mine.push_back(*e.id);
        } else {
          if (r.status != WriteStatus::wrong_expected_version) {
            failures.add("unexpected status " + std::string(to_string(r.status)));
          }
          known[s] = r.version;  // learn the actual version and move on
          ++conflicts;
        }
      }
      std::lock_guard lock(ids_mutex);
      accepted_ids.insert(mine.begin(), mine.end());
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures.list() == std::vector<std::string>{});

  const long attempts = static_cast<long>(kThreads) * kAppendsPerThread;
  CHECK(successes + conflicts == attempts);
  CHECK(successes > 0);
  CHECK(static_cast<long>(accepted_ids.size()) == successes.load());

  long stored = 0;
  std::set<Uuid> stored_ids;
  for (int s = 0; s < kStreams; ++s) {
    const std::string stream = "race-" + std::to_string(s);
    StreamVersion expected = 0;
    for (const RecordedEvent& e : f.store.stream_forward(stream)) {
      REQUIRE(e.stream_version == ++expected);  // gap-free
      stored_ids.insert(e.event_id);
      ++stored;
    }
    if (expected > 0) CHECK(f.store.stream_info(stream)->version == expected);
  }
  // Every accepted append is stored once; every rejected one left nothing.
  CHECK(stored == successes.load());
  CHECK(stored_ids == accepted_ids);
  CHECK(attempts - stored == conflicts.load());
  std::size_t in_all = 0;
  GlobalPosition last = 0;
  for (const RecordedEvent& e : f.store.all_forward()) {
    REQUIRE(e.global_position > last);
    last = e.global_position;
    ++in_all;
  }
  CHECK(static_cast<long>(in_all) == successes.load());
}

TEST_CASE("catch-up then live delivers each event once while appends race the switch",
          "[eventstore][concurrency][subscription][seam]") {
  Fixture f;
  std::atomic<bool> stop{false};
  ThreadFailures failures;
  std::jthread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (!f.store
               .append("seam-" + std::to_string(i % 7), ExpectedVersion::any(),
                       event("Seam", std::to_string(i)))
               .ok()) {
        failures.add("append failed");
      }
      if (i % 64 == 0) std::this_thread::yield();
    }
  });
  REQUIRE(eventually([&] { return f.store.head_position() >= 500; }));

  // Both subscriptions are created while the writer keeps appending.
  Subscription persistent = f.store.subscribe_persistent("seam", std::string(kAllStream));
  const GlobalPosition head_before = f.store.head_position();
  Subscription transient = f.store.subscribe(std::string(kAllStream));
  const GlobalPosition head_after = f.store.head_position();

  // Catch up and go live while the writer goes on for a while.
  std::vector<GlobalPosition> from_persistent;
  while (from_persistent.size() < static_cast<std::size_t>(head_after) + 1'500) {
    auto e = persistent.next(kDeliver);
    REQUIRE(e.has_value());
    from_persistent.push_back(e->global_position);
    persistent.ack(*e);
  }
  stop = true;
  writer.join();
  CHECK(failures.list() == std::vector<std::string>{});
  const GlobalPosition total = f.store.head_position();

  while (static_cast<GlobalPosition>(from_persistent.size()) < total) {
    auto e = persistent.next(kDeliver);
    REQUIRE(e.has_value());
    from_persistent.push_back(e->global_position);
    persistent.ack(*e);
  }
  std::vector<GlobalPosition> from_transient;
  while (from_transient.empty() || from_transient.back() < total) {
    auto e = transient.next(kDeliver);
    REQUIRE(e.has_value());
    from_transient.push_back(e->global_position);
  }

  CHECK(from_persistent == range(1, total));
  CHECK_FALSE(persistent.next(100ms).has_value());
  CHECK_FALSE(transient.next(100ms).has_value());
  // Everything after the subscription point, each once, in order.
  const GlobalPosition first = from_transient.front();
  CHECK(first >= head_before + 1);
  CHECK(first <= head_after + 1);
  CHECK(from_transient == range(first, total));
}

TEST_CASE("a callback subscription delivers every event in order on its own thread",
          "[eventstore][concurrency][subscription][callback]") {
  Fixture f;
  std::mutex mutex;
  std::vector<std::string> seen;
  std::thread::id handler_thread;
  auto worker = f.store.subscribe("callback", [&](const RecordedEvent& e) {
    std::lock_guard lock(mutex);
    handler_thread = std::this_thread::get_id();
    seen.emplace_back(e.data);
  });
  for (int i = 0; i < 200; ++i) {
    REQUIRE(
        f.store.append("callback", ExpectedVersion::any(), event("Cb", std::to_string(i))).ok());
  }
  REQUIRE(eventually([&] { return worker->handled() == 200; }));
  worker->stop();
  CHECK_FALSE(worker->running());
  CHECK_FALSE(worker->error());
  std::lock_guard lock(mutex);
  REQUIRE(seen.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(seen[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(handler_thread != std::this_thread::get_id());
}

TEST_CASE("a throwing handler stops its worker and the persistent event comes again",
          "[eventstore][concurrency][subscription][callback]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(3)).ok());
  std::atomic<int> calls{0};
  auto worker = f.store.subscribe_persistent("failing", "s", [&](const RecordedEvent& e) {
    ++calls;
    if (e.event_number == 2) throw std::runtime_error("handler failed on 2");
  });
  REQUIRE(eventually([&] { return !worker->running(); }));
  REQUIRE(worker->error());
  CHECK_THROWS_WITH(std::rethrow_exception(worker->error()), "handler failed on 2");
  CHECK(calls == 2);
  CHECK(worker->handled() == 1);
  worker.reset();

  std::vector<StreamVersion> redelivered;
  std::mutex mutex;
  auto retry = f.store.subscribe_persistent("failing", "s", [&](const RecordedEvent& e) {
    std::lock_guard lock(mutex);
    redelivered.push_back(e.event_number);
  });
  REQUIRE(eventually([&] { return retry->handled() == 2; }));
  retry->stop();
  std::lock_guard lock(mutex);
  CHECK(redelivered == std::vector<StreamVersion>{2, 3});
}

TEST_CASE("partitioned subscribers on their own threads keep each partition serial and ordered",
          "[eventstore][concurrency][subscription][partition]") {
  Fixture f;
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 3;
  options.max_in_flight = 4;
  options.partition_by = [](const RecordedEvent& e) { return std::string(e.stream_id); };

  struct Seen {
    int worker;
    StreamVersion version;
  };
  std::mutex mutex;
  std::map<std::string, std::vector<Seen>> seen;
  std::atomic<int> total{0};
  std::vector<std::unique_ptr<SubscriptionWorker>> workers;
  for (int w = 0; w < 3; ++w) {
    workers.push_back(f.store.subscribe_persistent(
        "partitioned", std::string(kAllStream),
        [&, w](const RecordedEvent& e) {
          {
            std::lock_guard lock(mutex);
            seen[std::string(e.stream_id)].push_back(Seen{w, e.stream_version});
          }
          ++total;
        },
        options));
  }
  constexpr int kPartitions = 9;
  constexpr int kPerPartition = 40;
  ThreadFailures failures;
  std::jthread writer([&] {
    for (int i = 0; i < kPerPartition; ++i) {
      for (int p = 0; p < kPartitions; ++p) {
        if (!f.store.append("part-" + std::to_string(p), ExpectedVersion::any(), event("P")).ok()) {
          failures.add("append failed");
        }
      }
    }
  });
  writer.join();
  CHECK(failures.list() == std::vector<std::string>{});
  REQUIRE(eventually([&] { return total.load() == kPartitions * kPerPartition; }));
  for (auto& worker : workers) {
    worker->stop();
    CHECK_FALSE(worker->error());
  }
  std::lock_guard lock(mutex);
  REQUIRE(seen.size() == kPartitions);
  for (const auto& [partition, list] : seen) {
    INFO("partition " << partition);
    REQUIRE(list.size() == kPerPartition);
    for (std::size_t i = 0; i < list.size(); ++i) {
      CHECK(list[i].worker == list[0].worker);
      CHECK(list[i].version == static_cast<StreamVersion>(i + 1));
    }
  }
}

// The subscriber side of the rebalancing case below: what each key's events
// did, checked at every delivery against the in-flight rule.
class PartitionLedger {
 public:
  explicit PartitionLedger(std::size_t keys) : keys_(keys) {}

  // `event` (data "<key>:<seq>") was delivered to `subscriber`.
  void delivered(int subscriber, const RecordedEvent& event) {
    const auto [key, seq] = parse(event);
    std::lock_guard lock(mutex_);
    Key& state = keys_.at(key);
    if (state.holder != kNobody && state.holder != subscriber) {
      record_failure("key " + std::to_string(key) + " seq " + std::to_string(seq) +
                     " went to subscriber " + std::to_string(subscriber) + " while un-acked at " +
                     std::to_string(state.holder));
    }
    const int expected = (state.holder == subscriber ? state.last_delivered : state.acked) + 1;
    if (seq != expected) {
      record_failure("key " + std::to_string(key) + " delivered seq " + std::to_string(seq) +
                     ", expected " + std::to_string(expected));
    }
    state.holder = subscriber;
    state.last_delivered = seq;
    ++state.in_flight;
    if (state.first_acked_at != 0 && state.first_acked_at < joined_at_[subscriber]) {
      ++old_keys_to_newcomers_;  // a key others had acked before this subscriber joined
    }
  }

  // Called before the store's ack of the same events, so the store cannot
  // hand a key on before this ledger lets go of it.
  void acked(int subscriber, const std::vector<RecordedEvent>& batch) {
    std::lock_guard lock(mutex_);
    for (const auto& event : batch) {
      const auto [key, seq] = parse(event);
      Key& state = keys_.at(key);
      if (state.holder != subscriber) {
        record_failure("key " + std::to_string(key) + " acked by " + std::to_string(subscriber) +
                       ", not its holder");
      }
      state.acked = seq;
      state.last_acker = subscriber;
      if (state.first_acked_at == 0) state.first_acked_at = ++clock_;
      if (--state.in_flight == 0) state.holder = kNobody;
      ++acked_total_;
    }
    progress_.notify_all();
  }

  // `subscriber` leaves without acking `batch`: the store hands it on.
  void abandoned(int subscriber, const std::vector<RecordedEvent>& batch) {
    std::lock_guard lock(mutex_);
    for (const auto& event : batch) {
      Key& state = keys_.at(parse(event).first);
      if (state.holder == subscriber) {
        state.holder = kNobody;
        state.in_flight = 0;
      }
    }
  }

  void joined(int subscriber) {
    std::lock_guard lock(mutex_);
    joined_at_[subscriber] = ++clock_;
  }

  void fail(std::string failure) {
    std::lock_guard lock(mutex_);
    record_failure(std::move(failure));
  }

  // Waits (on the acks, no polling) until `total` events are acked or a check failed.
  bool wait_for_acked(long total, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return progress_.wait_for(lock, limit,
                              [&] { return acked_total_ >= total || !failures_.empty(); });
  }

  std::vector<std::string> failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  long acked_total() const {
    std::lock_guard lock(mutex_);
    return acked_total_;
  }
  int acked(std::size_t key) const {
    std::lock_guard lock(mutex_);
    return keys_.at(key).acked;
  }
  int last_acker(std::size_t key) const {
    std::lock_guard lock(mutex_);
    return keys_.at(key).last_acker;
  }
  long old_keys_to_newcomers() const {
    std::lock_guard lock(mutex_);
    return old_keys_to_newcomers_;
  }

  static std::pair<std::size_t, int> parse(const RecordedEvent& event) {
    const std::string data(event.data);
    const auto colon = data.find(':');
    return {std::stoul(data.substr(0, colon)), std::stoi(data.substr(colon + 1))};
  }

 private:
  static constexpr int kNobody = -1;
  struct Key {
    int holder = kNobody;  // the subscriber with un-acked events of the key
    int in_flight = 0;
    int last_delivered = 0;
    int acked = 0;  // the seq acked last (acks come in order)
    int last_acker = kNobody;
    long first_acked_at = 0;
  };

  void record_failure(std::string failure) {
    if (failures_.size() < 10) failures_.push_back(std::move(failure));  // enough to tell
    progress_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable progress_;
  std::vector<Key> keys_;
  std::map<int, long> joined_at_;
  long clock_ = 0;  // orders joins and first acks
  long acked_total_ = 0;
  long old_keys_to_newcomers_ = 0;
  std::vector<std::string> failures_;
};

TEST_CASE("partitions rebalance over subscribers joining and leaving under load, in order",
          "[eventstore][concurrency][subscription][partition][rebalance]") {
  Fixture f;
  constexpr std::size_t kKeys = 10'000;
  constexpr int kRounds = 2;  // events per key, appended in order
  constexpr long kEvents = static_cast<long>(kKeys) * kRounds;
  constexpr std::size_t kBatch = 250;
  PersistentSubscriptionOptions options;
  options.start_from = StartFrom::origin();
  options.concurrency_limit = 4;
  options.max_in_flight = 16;
  options.checkpoint_every = 64;
  options.partition_by = [](const RecordedEvent& e) {
    const std::string data(e.data);
    return data.substr(0, data.find(':'));
  };
  PartitionLedger ledger(kKeys);
  std::atomic<bool> done{false};

  // Takes up to max_in_flight events (waiting for the first), records them;
  // empty when none came.
  auto take_batch = [&](Subscription& sub, int id) {
    std::vector<RecordedEvent> batch;
    while (batch.size() < options.max_in_flight) {
      auto e = sub.next(batch.empty() ? 50ms : 0ms);
      if (!e) break;
      ledger.delivered(id, *e);
      batch.push_back(std::move(*e));
    }
    return batch;
  };
  // Acks a batch with one cumulative ack of its last event, then checks the bound.
  auto ack_batch = [&](Subscription& sub, int id, const std::vector<RecordedEvent>& batch) {
    ledger.acked(id, batch);
    sub.ack(batch.back());
    const SubscriptionStats stats = sub.stats();
    if (stats.tracked_partitions > stats.in_flight) {
      ledger.fail("tracked partitions " + std::to_string(stats.tracked_partitions) +
                  " exceed the events in flight " + std::to_string(stats.in_flight));
    }
  };
  // Takes and acks batches until `stop`; counts the events it handled.
  auto consume = [&](Subscription& sub, int id, const std::atomic<bool>& stop,
                     std::atomic<std::size_t>& handled) {
    while (!stop.load()) {
      const auto batch = take_batch(sub, id);
      if (batch.empty()) continue;
      handled += batch.size();
      ack_batch(sub, id, batch);
    }
  };
  auto guarded = [&](auto body) {
    return [&, body]() mutable {
      try {
        body();
      } catch (const std::exception& error) {
        ledger.fail(std::string("thread threw: ") + error.what());
      }
    };
  };

  // The anchor stays for the whole run, so the subscription never closes and
  // only a departing subscriber's un-acked events are delivered twice.
  Subscription anchor = f.store.subscribe_persistent("rebalance", kAllStream, options);
  ledger.joined(0);
  std::vector<std::jthread> threads;
  std::atomic<std::size_t> anchor_got{0};
  threads.emplace_back(guarded([&] { consume(anchor, 0, done, anchor_got); }));
  std::atomic<int> next_id{1};
  std::atomic<int> joins{0};
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back(guarded([&, c] {
      for (int stint = 0; !done.load(); ++stint) {
        const int id = next_id++;
        Subscription sub = f.store.subscribe_persistent("rebalance", kAllStream, options);
        ledger.joined(id);
        ++joins;
        // Handles a few batches, then leaves, every other time holding a batch un-acked.
        for (int batches = 0; batches < 8 + 4 * c && !done.load(); ++batches) {
          const auto batch = take_batch(sub, id);
          if (batch.empty()) continue;
          if (batches == 7 + 4 * c && stint % 2 == 0) {
            ledger.abandoned(id, batch);
            break;
          }
          ack_batch(sub, id, batch);
        }
      }
    }));
  }
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back(guarded([&, w] {
      // Writer w owns the keys k with k % 2 == w; a key's rounds go in order.
      for (int seq = 1; seq <= kRounds; ++seq) {
        std::vector<EventData> batch;
        for (std::size_t k = static_cast<std::size_t>(w); k < kKeys; k += 2) {
          batch.push_back(event("Keyed", std::to_string(k) + ":" + std::to_string(seq)));
          if (batch.size() == kBatch || k + 2 >= kKeys) {
            if (!f.store.append("writer-" + std::to_string(w), ExpectedVersion::any(), batch)
                     .ok()) {
              ledger.fail("append failed");
            }
            batch.clear();
          }
        }
      }
    }));
  }

  const bool finished = ledger.wait_for_acked(kEvents, 120s);
  done = true;
  threads.clear();  // joins
  REQUIRE(ledger.failures() == std::vector<std::string>{});
  REQUIRE(finished);
  CHECK(ledger.acked_total() == kEvents);  // every event acked exactly once ...
  std::size_t incomplete = 0;
  for (std::size_t k = 0; k < kKeys; ++k) incomplete += ledger.acked(k) != kRounds;
  CHECK(incomplete == 0);  // ... every key's events, in order
  CHECK(joins.load() > 2);
  CHECK(ledger.old_keys_to_newcomers() > 0);
  SubscriptionStats settled = anchor.stats();
  CHECK(settled.subscribers == 1);
  CHECK(settled.in_flight == 0);
  CHECK(settled.tracked_partitions == 0);  // not one entry per key seen

  // All quiet, the anchor alone: a newcomer joins while every partition is
  // the anchor's; more events of the anchor's keys come; it gets a share.
  std::vector<std::size_t> anchors_keys;
  for (std::size_t k = 0; k < kKeys && anchors_keys.size() < 1'000; ++k) {
    if (ledger.last_acker(k) == 0) anchors_keys.push_back(k);
  }
  REQUIRE(anchors_keys.size() >= 100);  // the anchor acked its share last
  const long third_round_events = static_cast<long>(anchors_keys.size());
  Subscription newcomer = f.store.subscribe_persistent("rebalance", kAllStream, options);
  const int newcomer_id = next_id++;
  ledger.joined(newcomer_id);
  std::vector<EventData> third;
  for (std::size_t k : anchors_keys) third.push_back(event("Keyed", std::to_string(k) + ":3"));
  REQUIRE(f.store.append("writer-0", ExpectedVersion::any(), third).ok());
  std::atomic<bool> quiet_done{false};
  std::atomic<std::size_t> newcomer_got{0};
  threads.emplace_back(guarded([&] { consume(anchor, 0, quiet_done, anchor_got); }));
  threads.emplace_back(guarded([&] { consume(newcomer, newcomer_id, quiet_done, newcomer_got); }));
  const bool quiet_finished = ledger.wait_for_acked(kEvents + third_round_events, 60s);
  quiet_done = true;
  threads.clear();
  CHECK(quiet_finished);
  REQUIRE(ledger.failures() == std::vector<std::string>{});
  CHECK(ledger.acked_total() == kEvents + third_round_events);
  CHECK(newcomer_got.load() > 0);
  CHECK(newcomer_got.load() < anchors_keys.size());
  CHECK(newcomer.stats().tracked_partitions == 0);
}

TEST_CASE("readers racing writers never see part of a batch", "[eventstore][concurrency][read]") {
  Fixture f;
  constexpr int kBatches = 300;
  constexpr std::size_t kBatchSize = 10;
  std::atomic<bool> done{false};
  std::atomic<int> readers_ready{0};
  ThreadFailures failures;
  std::jthread writer([&] {
    while (readers_ready.load() < 2) std::this_thread::yield();
    for (int i = 0; i < kBatches; ++i) {
      if (!f.store
               .append("atomic-" + std::to_string(i % 3), ExpectedVersion::any(),
                       events(kBatchSize, "B"))
               .ok()) {
        failures.add("append failed");
      }
    }
    done = true;
  });
  std::vector<std::jthread> readers;
  std::atomic<long> checks{0};
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      ++readers_ready;
      do {
        const auto stream = f.store.read_stream_forward("atomic-" + std::to_string(r), 0, 100'000);
        if (stream.ok()) {
          if (stream.events.size() % kBatchSize != 0) failures.add("part of a batch in a stream");
          for (std::size_t i = 0; i < stream.events.size(); ++i) {
            if (stream.events[i].stream_version != static_cast<StreamVersion>(i + 1)) {
              failures.add("stream versions with a gap");
            }
          }
        }
        const auto all = f.store.read_all_backward(kLatest, 100'000);
        if (all.events.size() % kBatchSize != 0) failures.add("part of a batch in $all");
        ++checks;
      } while (!done.load());
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  CHECK(failures.list() == std::vector<std::string>{});
  CHECK(checks.load() > 0);
  CHECK(f.store.head_position() == kBatches * static_cast<GlobalPosition>(kBatchSize));
}

TEST_CASE("one append wakes many waiting subscribers", "[eventstore][concurrency][subscription]") {
  Fixture f;
  constexpr int kSubscribers = 6;
  std::vector<Subscription> subs;
  for (int i = 0; i < kSubscribers; ++i) subs.push_back(f.store.subscribe("wake"));
  std::atomic<int> woken{0};
  std::vector<std::jthread> threads;
  for (auto& sub : subs) {
    threads.emplace_back([&woken, &sub] {
      if (sub.next(kDeliver)) ++woken;
    });
  }
  std::this_thread::sleep_for(50ms);
  REQUIRE(f.store.append("wake", 0, event("Wake")).ok());
  for (auto& thread : threads) thread.join();
  CHECK(woken == kSubscribers);
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
