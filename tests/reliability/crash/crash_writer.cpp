// Child process of the crash-consistency tests: appends batches of kBatchSize events, batch k
// to stream "crash-<k % 50>", from batch FIRST on, forever; prints "acked <k>" (flushed) after
// each append returned success, so the parent knows which batches were acknowledged before it
// sends SIGKILL at a random moment.
// Usage: crash_writer STORE_URL FIRST_BATCH
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace es = gamebot::eventstore;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer STORE_URL FIRST_BATCH\n");
    return 2;
  }
  constexpr int kBatchSize = 10;
  es::EventStore store = es::open(argv[1]);
  for (long batch = std::strtol(argv[2], nullptr, 10);; ++batch) {
    std::vector<es::EventData> events(kBatchSize);
    for (int i = 0; i < kBatchSize; ++i) {
      events[static_cast<std::size_t>(i)].type = "crash_probe";
      events[static_cast<std::size_t>(i)].data = std::string(200, static_cast<char>('a' + i));
      events[static_cast<std::size_t>(i)].metadata = "batch=" + std::to_string(batch);
    }
    const es::AppendResult result =
        store.append("crash-" + std::to_string(batch % 50), es::ExpectedVersion::any(), events);
    if (!result.ok()) {
      std::fprintf(stderr, "append of batch %ld failed\n", batch);
      return 1;
    }
    std::printf("acked %ld\n", batch);
    std::fflush(stdout);
  }
}
