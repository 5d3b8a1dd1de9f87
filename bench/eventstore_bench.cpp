// Event store benchmarks (in-memory backend): batched and single-event appends
// against a plain std::vector push of the same values, reads by stream and by
// $all, subscription delivery latency against a bare condition-variable
// hand-off, and resident memory per raw byte of the stored fields.

#include <fmt/format.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::bench {
namespace {

namespace es = gamebot::eventstore;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 100;
constexpr std::size_t kDataBytes = 200;

// Resident set size of this process, from /proc/self/statm.
std::size_t resident_bytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (file == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  const int read = std::fscanf(file, "%lu %lu", &size, &resident);
  std::fclose(file);
  if (read != 2) return 0;
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::string stream_name(std::size_t stream) {
  return fmt::format("game-{:06}", stream);
}

// The i-th benchmark event: a 200-byte JSON-ish payload, small metadata, ids set.
es::EventData make_event(std::size_t i) {
  static const char* const kTypes[] = {"GameStarted", "GuessMade", "GuessScored", "RoundEnded"};
  es::EventData e;
  e.type = kTypes[i % 4];
  e.data = fmt::format(R"({{"game":{},"player":{},"guess":"{}","round":{}}})", i / kBatch, i % 97,
                       std::string(80, static_cast<char>('a' + i % 26)), i % 13);
  e.data.resize(kDataBytes, ' ');
  e.metadata = fmt::format(R"({{"user":"player-{}"}})", i % 1000);
  e.id = Uuid::v7();
  e.causation_id = Uuid::v7();
  e.correlation_id = Uuid::v7();
  e.created_at = es::now();
  return e;
}

// Bytes of the fields of one recorded event: ids, type, data, metadata,
// created-at, stream id, stream version and global position.
std::size_t raw_bytes(const es::EventData& e, std::size_t stream_id_bytes) {
  return 16 + e.type.size() + e.data.size() + e.metadata.size() + (e.causation_id ? 16 : 0) +
         (e.correlation_id ? 16 : 0) + 8 + stream_id_bytes + 8 + 8;
}

double per_second(std::size_t count, double secs) {
  return secs > 0 ? static_cast<double>(count) / secs : 0;
}

// Wall-clock and this thread's CPU seconds of one run of `work`. The CPU figure
// shows the cost when the machine is shared (a loaded CI box stretches wall
// time for the baseline and the store alike).
struct Timing {
  double wall = 0;
  double cpu = 0;
};

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

template <typename F>
Timing timed(F&& work) {
  const double cpu_start = thread_cpu_seconds();
  const double wall = seconds(work);
  return Timing{wall, thread_cpu_seconds() - cpu_start};
}

GAMEBOT_BENCHMARK("eventstore/memory/throughput", context) {
  const std::size_t events = context.size<std::size_t>(1'000'000, 50'000);
  const std::size_t streams = context.size<std::size_t>(10'000, 500);

  std::vector<es::EventData> values;
  values.reserve(events);
  for (std::size_t i = 0; i < events; ++i) values.push_back(make_event(i));

  // Baseline: the same values pushed into a plain vector.
  Timing vector_time;
  {
    std::vector<es::EventData> plain;
    vector_time = timed([&] {
      for (const es::EventData& e : values) plain.push_back(e);
    });
    if (plain.size() != events) std::abort();
  }
  const double vector_rate = per_second(events, vector_time.wall);
  const double vector_cpu_rate = per_second(events, vector_time.cpu);
  const Baseline vector_cpu{"std::vector push_back, thread CPU time", vector_cpu_rate};

  // Batches of 100, each batch a stream of its own (events / 100 = streams for the
  // full run), at exact expected versions.
  es::EventStore batched(std::make_shared<es::MemoryBackend>());
  std::vector<es::StreamVersion> versions(streams, 0);
  const Timing batch_time = timed([&] {
    for (std::size_t first = 0; first < events; first += kBatch) {
      const std::size_t stream = (first / kBatch) % streams;
      const std::span<const es::EventData> batch(values.data() + first,
                                                 std::min(kBatch, events - first));
      const es::AppendResult r = batched.append(stream_name(stream), versions[stream], batch);
      if (!r.ok()) std::abort();
      versions[stream] = r.version;
    }
  });
  const double batch_rate = per_second(events, batch_time.wall);
  context.report(rate_vs_baseline("eventstore/memory/append/batch100", batch_rate, "events/s",
                                  "std::vector push_back of the same values", vector_rate, 0.4));
  context.report(at_least("eventstore/memory/append/batch100/absolute", batch_rate, "events/s",
                          3'000'000, Baseline{"std::vector push_back", vector_rate}));
  context.report(at_least("eventstore/memory/append/batch100/cpu",
                          per_second(events, batch_time.cpu), "events/cpu-s", 3'000'000,
                          vector_cpu));

  // One event per append.
  {
    es::EventStore single(std::make_shared<es::MemoryBackend>());
    std::vector<es::StreamVersion> single_versions(streams, 0);
    std::vector<std::string> names;
    for (std::size_t s = 0; s < streams; ++s) names.push_back(stream_name(s));
    const Timing single_time = timed([&] {
      for (std::size_t i = 0; i < events; ++i) {
        const std::size_t stream = i % streams;
        const es::AppendResult r = single.append(names[stream], single_versions[stream], values[i]);
        if (!r.ok()) std::abort();
        single_versions[stream] = r.version;
      }
    });
    context.report(at_least("eventstore/memory/append/single", per_second(events, single_time.wall),
                            "events/s", 1'000'000, Baseline{"std::vector push_back", vector_rate}));
    context.report(at_least("eventstore/memory/append/single/cpu",
                            per_second(events, single_time.cpu), "events/cpu-s", 1'000'000,
                            vector_cpu));
  }

  // Read everything back, by stream and by $all.
  std::size_t bytes_seen = 0;
  std::size_t read_by_stream = 0;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(stream_name(s));
  const Timing stream_time = timed([&] {
    for (const std::string& name : names) {
      for (const es::RecordedEvent& e : batched.stream_forward(name)) {
        bytes_seen += e.data.size();
        ++read_by_stream;
      }
    }
  });
  std::size_t read_by_all = 0;
  const Timing all_time = timed([&] {
    for (const es::RecordedEvent& e : batched.all_forward()) {
      bytes_seen += e.data.size();
      ++read_by_all;
    }
  });
  if (read_by_stream != events || read_by_all != events || bytes_seen == 0) std::abort();
  context.report(at_least("eventstore/memory/read/streams", per_second(events, stream_time.wall),
                          "events/s", 10'000'000, Baseline{"std::vector push_back", vector_rate}));
  context.report(at_least("eventstore/memory/read/all", per_second(events, all_time.wall),
                          "events/s", 10'000'000, Baseline{"std::vector push_back", vector_rate}));
  context.report(at_least("eventstore/memory/read/streams/cpu", per_second(events, stream_time.cpu),
                          "events/cpu-s", 10'000'000, vector_cpu));
  context.report(at_least("eventstore/memory/read/all/cpu", per_second(events, all_time.cpu),
                          "events/cpu-s", 10'000'000, vector_cpu));
}

GAMEBOT_BENCHMARK("eventstore/memory/resident", context) {
  const std::size_t events = context.size<std::size_t>(1'000'000, 50'000);
  const std::size_t streams = context.size<std::size_t>(10'000, 500);
  malloc_trim(0);  // freed memory of earlier benchmarks must not be counted as reused
  const std::size_t before = resident_bytes();
  std::size_t raw = 0;
  auto backend = std::make_shared<es::MemoryBackend>();
  {
    es::EventStore store(backend);
    std::vector<es::EventData> batch;
    for (std::size_t first = 0; first < events; first += kBatch) {
      batch.clear();
      const std::size_t stream = (first / kBatch) % streams;
      const std::string name = stream_name(stream);
      for (std::size_t i = first; i < std::min(first + kBatch, events); ++i) {
        batch.push_back(make_event(i));
        raw += raw_bytes(batch.back(), name.size());
      }
      if (!store.append(name, es::ExpectedVersion::any(), batch).ok()) std::abort();
    }
    batch = {};
  }
  const std::size_t after = resident_bytes();
  const double ratio =
      static_cast<double>(after - std::min(after, before)) / static_cast<double>(raw);
  Figure figure =
      at_most("eventstore/memory/resident_per_raw_byte", ratio, "ratio", 1.5,
              Baseline{"raw bytes of the events' fields (MB)", static_cast<double>(raw) / 1e6});
  figure.ratio.reset();
  context.report(std::move(figure));
  if (backend->head_position() != static_cast<es::GlobalPosition>(events)) std::abort();
}

// p50/p99 in microseconds of a sorted sample.
std::pair<double, double> percentiles(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1,
                            static_cast<std::size_t>(q * static_cast<double>(samples.size())))];
  };
  return {at(0.50), at(0.99)};
}

// Baseline: one thread hands a timestamp to another through a mutex,
// condition variable and deque; the receiver measures the wake-up.
std::vector<double> condition_variable_handoff(std::size_t samples) {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Clock::time_point> queue;
  std::vector<double> latencies;
  latencies.reserve(samples);
  std::atomic<std::size_t> received{0};
  std::thread receiver([&] {
    for (std::size_t i = 0; i < samples; ++i) {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return !queue.empty(); });
      const Clock::time_point sent = queue.front();
      queue.pop_front();
      lock.unlock();
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
      received.store(i + 1);
    }
  });
  for (std::size_t i = 0; i < samples; ++i) {
    {
      std::lock_guard lock(mutex);
      queue.push_back(Clock::now());
    }
    ready.notify_one();
    while (received.load() < i + 1) std::this_thread::yield();
  }
  receiver.join();
  return latencies;
}

GAMEBOT_BENCHMARK("eventstore/memory/delivery", context) {
  const std::size_t samples = context.size<std::size_t>(20'000, 2'000);
  const auto baseline = percentiles(condition_variable_handoff(samples));

  es::EventStore store(std::make_shared<es::MemoryBackend>());
  std::vector<double> pull_latencies;
  {
    es::Subscription subscription = store.subscribe(std::string(es::kAllStream));
    std::atomic<std::size_t> received{0};
    std::vector<Clock::time_point> sent(samples);
    std::thread subscriber([&] {
      for (std::size_t i = 0; i < samples; ++i) {
        if (!subscription.next(std::chrono::seconds(10))) std::abort();
        pull_latencies.push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - sent[i]).count());
        received.store(i + 1);
      }
    });
    const es::EventData e = make_event(0);
    for (std::size_t i = 0; i < samples; ++i) {
      es::EventData copy = e;
      copy.id.reset();
      sent[i] = Clock::now();
      if (!store.append("latency", es::ExpectedVersion::any(), copy).ok()) std::abort();
      while (received.load() < i + 1) std::this_thread::yield();
    }
    subscriber.join();
  }
  const auto pull = percentiles(pull_latencies);

  std::vector<double> callback_latencies;
  callback_latencies.reserve(samples);
  {
    std::vector<Clock::time_point> sent(samples);
    std::atomic<std::size_t> received{0};
    auto worker = store.subscribe("callback-latency", [&](const es::RecordedEvent& event) {
      const auto index = static_cast<std::size_t>(event.event_number - 1);
      callback_latencies.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - sent[index]).count());
      received.store(index + 1);
    });
    const es::EventData e = make_event(1);
    for (std::size_t i = 0; i < samples; ++i) {
      es::EventData copy = e;
      copy.id.reset();
      sent[i] = Clock::now();
      if (!store.append("callback-latency", es::ExpectedVersion::any(), copy).ok()) std::abort();
      while (received.load() < i + 1) std::this_thread::yield();
    }
    worker->stop();
  }
  const auto callback = percentiles(callback_latencies);

  context.report(at_most("eventstore/memory/delivery/pull/p50", pull.first, "us", 200,
                         Baseline{"condition_variable hand-off p50", baseline.first}));
  context.report(at_most("eventstore/memory/delivery/pull/p99", pull.second, "us", 200,
                         Baseline{"condition_variable hand-off p99", baseline.second}));
  context.report(at_most("eventstore/memory/delivery/callback/p50", callback.first, "us", 200,
                         Baseline{"condition_variable hand-off p50", baseline.first}));
  context.report(at_most("eventstore/memory/delivery/callback/p99", callback.second, "us", 200,
                         Baseline{"condition_variable hand-off p99", baseline.second}));
}

}  // namespace
}  // namespace gamebot::bench
