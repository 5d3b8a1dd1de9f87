// Crash consistency: a writer process killed with SIGKILL at random moments in the middle of
// batched appends, many times. Afterwards every batch is all or nothing, every batch the writer
// saw acknowledged is there, and the store passes verify().
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "crash_store.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/verify.hpp"

extern char** environ;

namespace es = gamebot::eventstore;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kBatchSize = 10;
// Kills per run: GAMEBOT_CRASH_KILLS, else 25 on SQLite and 10 on PostgreSQL (whose writer
// needs most of a second to open the store on a loaded machine).
int kills_per_run() {
  if (const char* text = std::getenv("GAMEBOT_CRASH_KILLS"); text != nullptr && *text != '\0') {
    return std::max(1, std::atoi(text));
  }
  return std::string_view(GAMEBOT_CRASH_BACKEND) == "postgres" ? 10 : 25;
}

// Spawns the writer with stdout into `out`, lets it append for `run_for` after its first
// acknowledged batch, kills it with SIGKILL.
// Returns true when the signal (not an early exit) ended it.
bool run_and_kill(const std::string& url, long first_batch, const std::filesystem::path& out,
                  std::chrono::milliseconds run_for) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const std::string first = std::to_string(first_batch);
  std::vector<char*> args{const_cast<char*>(GAMEBOT_CRASH_WRITER), const_cast<char*>(url.c_str()),
                          const_cast<char*>(first.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  // Kill only once the writer is appending (opening a PostgreSQL store takes a while under load).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("acked") != std::string::npos) break;
    std::this_thread::sleep_for(2ms);
  }
  std::this_thread::sleep_for(run_for);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

std::set<long> acked_batches(const std::filesystem::path& out) {
  std::set<long> acked;
  std::ifstream in(out);
  std::string word;
  long batch = 0;
  // A line cut by the kill is ignored: only whole "acked <k>" pairs count.
  while (in >> word >> batch) {
    if (word == "acked") acked.insert(batch);
  }
  return acked;
}

// Events per batch number, from the metadata the writer set.
std::map<long, std::size_t> batches_in_store(es::EventStore& store) {
  std::map<long, std::size_t> counts;
  for (const es::RecordedEvent& event : store.all_forward()) {
    const std::string metadata(event.metadata);
    REQUIRE(metadata.rfind("batch=", 0) == 0);
    ++counts[std::stol(metadata.substr(6))];
  }
  return counts;
}

}  // namespace

TEST_CASE("a writer killed at random points leaves every batch whole and every ack durable",
          "[reliability][crash][" GAMEBOT_CRASH_BACKEND "]") {
  gamebot::reliability::CrashStore target;
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(1, 60);
  std::set<long> acked;
  long next_batch = 0;
  int killed_mid_run = 0;
  const int kills = kills_per_run();
  for (int kill = 0; kill < kills; ++kill) {
    const auto out = target.dir() / ("writer-" + std::to_string(kill) + ".out");
    if (run_and_kill(target.url(), next_batch, out, std::chrono::milliseconds(delay_ms(random)))) {
      ++killed_mid_run;
    }
    const std::set<long> now_acked = acked_batches(out);
    acked.insert(now_acked.begin(), now_acked.end());

    es::EventStore store = es::open(target.url());
    const std::map<long, std::size_t> counts = batches_in_store(store);
    for (const auto& [batch, count] : counts) {
      INFO("batch " << batch << " after kill " << kill);
      CHECK(count == kBatchSize);
    }
    for (long batch : acked) {
      INFO("acknowledged batch " << batch << " after kill " << kill);
      CHECK(counts.count(batch) == 1);
    }
    const es::IntegrityReport report = es::verify(store);
    std::string violations;
    for (const es::Violation& violation : report.violations)
      violations += es::describe(violation) + "\n";
    INFO("verify after kill " << kill << ":\n" << violations);
    CHECK(report.ok());
    // The next writer starts past anything that reached the store, acknowledged or not.
    next_batch = counts.empty() ? next_batch : counts.rbegin()->first + 1;
  }
  // The kills landed while the writer was working, and it got real work done in between.
  CHECK(killed_mid_run == kills);
  CHECK(acked.size() >= static_cast<std::size_t>(kills));
}

namespace {

// Runs the subscriber with stdout into `out`; with `kill_after`, kills it that long after its
// first handled event, else waits for it to finish. Returns the positions it handled, in order,
// and whether it ended "idle" (caught up).
std::pair<std::vector<long long>, bool> run_subscriber(
    const std::string& url, const std::filesystem::path& out,
    std::optional<std::chrono::milliseconds> kill_after) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args{const_cast<char*>(GAMEBOT_CRASH_SUBSCRIBER),
                          const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  if (kill_after) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(out);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.find("handled") != std::string::npos) break;
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(*kill_after);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::vector<long long> handled;
  bool idle = false;
  std::ifstream in(out);
  std::string word;
  while (in >> word) {
    long long position = 0;
    if (word == "idle") {
      idle = true;
    } else if (word == "handled" && in >> position) {
      handled.push_back(position);
    }
  }
  return {handled, idle};
}

}  // namespace

TEST_CASE("a persistent subscriber killed between handling and ack resumes from its last ack",
          "[reliability][crash][subscriptions][" GAMEBOT_CRASH_BACKEND "]") {
  gamebot::reliability::CrashStore target;
  constexpr long long kEvents = 400;
  {
    es::EventStore store = es::open(target.url());
    for (long long i = 0; i < kEvents; ++i) {
      es::EventData event;
      event.type = "crash_probe";
      event.data = std::to_string(i);
      REQUIRE(
          store.append("probe-" + std::to_string(i % 7), es::ExpectedVersion::any(), event).ok());
    }
  }
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(1, 25);
  std::set<long long> seen;
  long long last_handled = 0;
  const int kills = std::max(1, kills_per_run() / 3);
  for (int kill = 0; kill < kills && last_handled < kEvents; ++kill) {
    const auto out = target.dir() / ("subscriber-" + std::to_string(kill) + ".out");
    auto [handled, idle] =
        run_subscriber(target.url(), out, std::chrono::milliseconds(delay_ms(random)));
    INFO("run " << kill << " handled " << handled.size() << " events");
    REQUIRE_FALSE(handled.empty());
    // Resumes at or before the event after the last one handled: at-least-once, nothing skipped.
    CHECK(handled.front() <= last_handled + 1);
    CHECK(handled.front() >= 1);
    for (std::size_t i = 1; i < handled.size(); ++i) CHECK(handled[i] == handled[i - 1] + 1);
    seen.insert(handled.begin(), handled.end());
    last_handled = std::max(last_handled, handled.back());
  }
  // A last run, not killed, catches up to the end.
  auto [handled, idle] = run_subscriber(target.url(), target.dir() / "subscriber-last.out", {});
  CHECK(idle);
  if (!handled.empty()) {
    CHECK(handled.front() <= last_handled + 1);
    seen.insert(handled.begin(), handled.end());
  }
  CHECK(seen.size() == static_cast<std::size_t>(kEvents));
  CHECK(*seen.begin() == 1);
  CHECK(*seen.rbegin() == kEvents);
}
