// Conformance, threaded cases (labelled `concurrency`, run under ThreadSanitizer):
// the append race, catch-up/live seams with racing appends, callback workers,
// partitioned subscribers on their own threads, readers racing writers.

#include <atomic>
#include <catch2/catch.hpp>
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
