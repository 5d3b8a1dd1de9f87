// Child process of the concurrency torture test: THREADS threads each make APPENDS successful
// appends of 1-3 events to shared streams "torture-<0..STREAMS-1>", each at the exact expected
// version it just read (a stale read loses with wrong_expected_version and is retried). After
// each successful append it prints "acked <event id>" for each event (one line each, flushed
// under a lock so lines never interleave).
// Usage: torture_writer STORE_URL WORKER THREADS APPENDS STREAMS
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/eventstore.hpp"

namespace es = gamebot::eventstore;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: torture_writer STORE_URL WORKER THREADS APPENDS STREAMS\n");
    return 2;
  }
  const std::string url = argv[1];
  const std::string worker = argv[2];
  const int threads = std::atoi(argv[3]);
  const int appends = std::atoi(argv[4]);
  const int streams = std::atoi(argv[5]);
  es::EventStore store = es::open(url);
  std::mutex output;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(std::random_device{}()));
      for (int done = 0; done < appends;) {
        const std::string stream = "torture-" + std::to_string(random() % streams);
        const auto info = store.stream_info(stream);
        const es::StreamVersion head = info ? info->version : 0;
        std::vector<es::EventData> events(1 + random() % 3);
        for (std::size_t i = 0; i < events.size(); ++i) {
          events[i].type = "torture_probe";
          events[i].id = gamebot::Uuid::v7();
          events[i].data = worker + "/" + std::to_string(t) + "/" + std::to_string(done);
        }
        const es::AppendResult result = store.append(stream, es::ExpectedVersion(head), events);
        if (result.status == es::WriteStatus::wrong_expected_version) continue;
        if (!result.ok()) {
          std::fprintf(stderr, "append failed: %s\n",
                       std::string(es::to_string(result.status)).c_str());
          std::_Exit(1);
        }
        ++done;
        std::lock_guard lock(output);
        for (const es::EventData& event : events)
          std::printf("acked %s\n", event.id->to_string().c_str());
        std::fflush(stdout);
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  return 0;
}
