// One writer process of the eventstore/postgres/pgbouncer benchmark:
//   gamebot-bench-pg-writer STORE_URL STREAM COUNT
// opens the store at STORE_URL (straight to the server, or through a PgBouncer
// with pooling=transaction), appends one warm-up event to STREAM, writes 'R'
// to stdout and waits for one byte on stdin (the start shared by every
// writer), appends COUNT single events to STREAM, writes 'D' and exits 0.
// Events as in the other event-store benchmarks: ~200-byte data, small
// metadata, all ids set. Errors go to stderr with exit status 1.

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "gamebot/eventstore/eventstore.hpp"

namespace {

namespace es = gamebot::eventstore;

es::EventData make_event(std::size_t i) {
  static const char* const kTypes[] = {"GameStarted", "GuessMade", "GuessScored", "RoundEnded"};
  es::EventData e;
  e.type = kTypes[i % 4];
  e.data = fmt::format(R"({{"game":{},"player":{},"guess":"{}","round":{}}})", i / 100, i % 97,
                       std::string(80, static_cast<char>('a' + i % 26)), i % 13);
  e.data.resize(200, ' ');
  e.metadata = fmt::format(R"({{"user":"player-{}"}})", i % 1000);
  e.id = gamebot::Uuid::v7();
  e.causation_id = gamebot::Uuid::v7();
  e.correlation_id = gamebot::Uuid::v7();
  e.created_at = es::now();
  return e;
}

void signal_parent(char byte) {
  if (::write(STDOUT_FILENO, &byte, 1) != 1) throw std::runtime_error("cannot write to the bench");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: gamebot-bench-pg-writer STORE_URL STREAM COUNT\n");
    return 2;
  }
  try {
    const std::string stream = argv[2];
    const std::size_t count = std::stoul(argv[3]);
    es::EventStore store = es::open(argv[1]);
    if (!store.append(stream, 0, make_event(0)).ok()) throw std::runtime_error("warm-up append");
    signal_parent('R');
    char go = 0;
    if (::read(STDIN_FILENO, &go, 1) != 1) throw std::runtime_error("no start from the bench");
    for (std::size_t i = 1; i <= count; ++i) {
      if (!store.append(stream, static_cast<std::int64_t>(i), make_event(i)).ok()) {
        throw std::runtime_error(fmt::format("append {} to {} failed", i, stream));
      }
    }
    signal_parent('D');
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gamebot-bench-pg-writer: %s\n", e.what());
    return 1;
  }
}
