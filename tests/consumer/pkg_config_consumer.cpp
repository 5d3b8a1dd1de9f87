// Built by scripts/consumer-check with nothing but `pkg-config --cflags --libs
// gamebot-persistence`: opens a SQLite store file, appends, reads it back.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "gamebot/eventstore/eventstore.hpp"

int main() {
  namespace es = gamebot::eventstore;
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("gamebot-pkg-config-consumer-" + std::to_string(::getpid()) + ".db");
  int status = 1;
  {
    es::EventStore store = es::open("sqlite:" + file.string());
    es::EventData event;
    event.type = "score_recorded";
    event.data = R"({"player":"ana","points":3})";
    if (store.append("scores-ana", es::ExpectedVersion::no_stream(), event).ok()) {
      es::ReadResult read = store.read_stream_forward("scores-ana");
      if (read.ok() && read.events.size() == 1 && read.events[0].data == event.data) status = 0;
    }
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix);
  std::puts(status == 0 ? "pkg-config consumer: appended and read back one event"
                        : "pkg-config consumer: the event did not come back");
  return status;
}
