// Several processes on one SQLite file: writers racing at exact expected
// versions, a subscriber in a third process, ownership of a persistent
// subscription passing on when its owner dies, and the delay until an append
// in another process wakes a subscriber here.
//
// Children are forked before this process opens any store (no threads exist
// at fork time), open their own stores, and end with _exit. Catch2 assertions
// run in the parent only; children report through exit codes and files.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

// A one-way pipe for "ready" signals between parent and child.
class Signal {
 public:
  Signal() { REQUIRE(::pipe(fds_) == 0); }
  ~Signal() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void send() const {
    const char byte = 1;
    if (::write(fds_[1], &byte, 1) != 1) std::perror("signal write");
  }
  // True when a signal arrived within `timeout`.
  bool wait(std::chrono::milliseconds timeout) const {
    pollfd fd{fds_[0], POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) != 1) return false;
    char byte = 0;
    return ::read(fds_[0], &byte, 1) == 1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// Runs `body` in a child process; its return value is the exit code, an
// exception exits with 100 after printing it.
pid_t spawn(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 100;
    try {
      code = body();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), error.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// The child's exit code, or 200 + signal number when a signal ended it.
int wait_for(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 200 + WTERMSIG(status);
}

EventStore open_file(const std::string& path) {
  return EventStore(SqliteBackend::open("sqlite:" + path));
}

TEST_CASE("two processes race at exact versions and a third sees every event once, in order",
          "[eventstore][sqlite][concurrency][process]") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/race.db";
  constexpr int kWriters = 2;
  constexpr int kAppends = 250;
  constexpr int kStreams = 3;
  { open_file(path); }  // schema first, so the children only race on appends

  const pid_t subscriber = spawn([&] {
    EventStore store = open_file(path);
    Subscription sub = store.subscribe_persistent("audit", std::string(kAllStream));
    std::ofstream seen(dir.path() + "/seen.txt");
    int done = 0;
    while (done < kWriters) {
      auto e = sub.next(20s);
      if (!e) return 1;  // nothing for 20 s: a lost wake-up or a lost event
      seen << e->global_position << ' ' << e->event_id.to_string() << '\n';
      if (e->type == "WriterDone") ++done;
      sub.ack(*e);
    }
    return 0;
  });
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(spawn([&, w] {
      EventStore store = open_file(path);
      std::mt19937 random(static_cast<unsigned>(w) + 11u);
      std::vector<StreamVersion> known(kStreams, 0);
      int successes = 0;
      int conflicts = 0;
      for (int i = 0; i < kAppends; ++i) {
        const int s = static_cast<int>(random() % kStreams);
        const AppendResult r =
            store.append("race-" + std::to_string(s), known[s],
                         event("Raced", std::to_string(w) + ":" + std::to_string(i)));
        if (r.ok()) {
          ++successes;
        } else if (r.status == WriteStatus::wrong_expected_version) {
          ++conflicts;
        } else {
          return 2;
        }
        known[s] = r.version;
      }
      if (!store.append("done-" + std::to_string(w), 0, event("WriterDone")).ok()) return 3;
      std::ofstream(dir.path() + "/writer-" + std::to_string(w) + ".txt")
          << successes << ' ' << conflicts << '\n';
      return 0;
    }));
  }
  for (pid_t writer : writers) CHECK(wait_for(writer) == 0);
  CHECK(wait_for(subscriber) == 0);

  int successes = 0;
  int conflicts = 0;
  for (int w = 0; w < kWriters; ++w) {
    std::ifstream in(dir.path() + "/writer-" + std::to_string(w) + ".txt");
    int ok = -1;
    int refused = -1;
    in >> ok >> refused;
    CHECK(ok + refused == kAppends);
    successes += ok;
    conflicts += refused;
  }
  INFO(successes << " appends accepted, " << conflicts << " refused as wrong_expected_version");
  EventStore store = open_file(path);
  const auto all = store.read_all_forward(0, 100'000).events;
  CHECK(static_cast<int>(all.size()) == successes + kWriters);  // + the WriterDone events
  for (std::size_t i = 0; i < all.size(); ++i) {
    REQUIRE(all[i].global_position == static_cast<GlobalPosition>(i + 1));  // no gap, no reuse
  }
  int stored = 0;
  for (int s = 0; s < kStreams; ++s) {
    StreamVersion expected = 0;
    for (const RecordedEvent& e : store.stream_forward("race-" + std::to_string(s))) {
      REQUIRE(e.stream_version == ++expected);
      ++stored;
    }
  }
  CHECK(stored == successes);

  // The subscriber process saw exactly $all, in order, each event once.
  std::ifstream in(dir.path() + "/seen.txt");
  std::vector<std::pair<GlobalPosition, std::string>> seen;
  GlobalPosition position = 0;
  std::string id;
  while (in >> position >> id) seen.emplace_back(position, id);
  REQUIRE(seen.size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(seen[i].first == all[i].global_position);
    CHECK(seen[i].second == all[i].event_id.to_string());
  }
}

TEST_CASE("a persistent subscription whose owner process dies passes to a standby",
          "[eventstore][sqlite][concurrency][process][ownership]") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/owned.db";
  {
    EventStore store = open_file(path);
    REQUIRE(store.append("s", 0, {event("A"), event("B"), event("C")}).ok());
  }
  Signal owning;
  const pid_t owner = spawn([&] {
    EventStore store = open_file(path);
    Subscription sub = store.subscribe_persistent("single-owner", "s");
    auto first = sub.next(10s);
    if (!first) return 1;
    sub.ack(*first);
    owning.send();
    std::this_thread::sleep_for(60s);  // killed long before
    return 2;
  });
  REQUIRE(owning.wait(20s));

  EventStore store = open_file(path);
  Subscription standby = store.subscribe_persistent("single-owner", "s");
  CHECK_FALSE(standby.next(300ms).has_value());  // owned by the other process
  REQUIRE(::kill(owner, SIGKILL) == 0);
  CHECK(wait_for(owner) == 200 + SIGKILL);
  // The kernel dropped the dead owner's lock: the standby takes over from the
  // owner's last stored checkpoint.
  const auto next = standby.next(10s);
  REQUIRE(next.has_value());
  CHECK(next->event_number == 2);
}

TEST_CASE("an append in another process wakes a subscriber here within a bounded delay",
          "[eventstore][sqlite][concurrency][process][live]") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/live.db";
  { open_file(path); }
  constexpr int kEvents = 20;
  Signal subscribed;
  const pid_t writer = spawn([&] {
    if (!subscribed.wait(20s)) return 1;
    EventStore store = open_file(path);
    for (int i = 0; i < kEvents; ++i) {
      std::this_thread::sleep_for(20ms);
      if (!store.append("live", ExpectedVersion::any(), event("Ping", std::to_string(i))).ok()) {
        return 2;
      }
    }
    return 0;
  });

  StoreOptions slow_poll;
  slow_poll.poll_interval = 60s;  // only the data_version watcher can deliver in time
  EventStore store(SqliteBackend::open("sqlite:" + path), slow_poll);
  Subscription sub = store.subscribe(std::string(kAllStream));
  subscribed.send();
  std::vector<double> delays_ms;
  for (int i = 0; i < kEvents; ++i) {
    auto e = sub.next(10s);
    REQUIRE(e.has_value());
    CHECK(e->data == std::to_string(i));
    delays_ms.push_back(std::chrono::duration<double, std::milli>(now() - e->created_at).count());
  }
  CHECK(wait_for(writer) == 0);
  std::sort(delays_ms.begin(), delays_ms.end());
  INFO("cross-process delivery delay: median " << delays_ms[kEvents / 2] << " ms, max "
                                               << delays_ms.back() << " ms");
  // Correctness, not speed: every event arrives, none after a poll interval.
  CHECK(delays_ms.back() < 1000.0);
}

}  // namespace
}  // namespace gamebot::eventstore
