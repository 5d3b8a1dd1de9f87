// Child process of the crash-consistency tests: a persistent `$all` subscriber ("crash-sub")
// that prints "handled <global position>" (flushed) for each event and then acks it; when no
// event comes for a second it prints "idle" and exits 0. The parent kills it with SIGKILL at a
// random moment, i.e. often between handling an event and acking it.
// Usage: crash_subscriber STORE_URL
#include <cstdio>

#include "gamebot/eventstore/eventstore.hpp"

namespace es = gamebot::eventstore;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: crash_subscriber STORE_URL\n");
    return 2;
  }
  es::EventStore store = es::open(argv[1]);
  es::Subscription subscription = store.subscribe_persistent("crash-sub", es::kAllStream);
  for (;;) {
    std::optional<es::RecordedEvent> event = subscription.next(1s);
    if (!event) {
      std::printf("idle\n");
      return 0;
    }
    std::printf("handled %lld\n", static_cast<long long>(event->global_position));
    std::fflush(stdout);
    subscription.ack(*event);
  }
}
