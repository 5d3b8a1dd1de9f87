// gamebot-soak: a bounded soak (not run by CI). For each backend, rounds of a few seconds, each
// on a fresh store: writer threads append batches, a reader pages through `$all` and streams, a
// persistent subscription consumes and acks, a transient subscription follows live, and a
// harness DatabaseManager runs per-test isolation cycles. Between rounds the store is removed,
// so resident memory, open file descriptors and server connections must come back to where they
// were: the report compares the first sample after warm-up with the last. Exit status 0 when
// there were no errors and nothing grew beyond the tolerance, 1 otherwise.
//
// Usage: gamebot-soak [--minutes N (per backend, default 10)] [--backend
// memory|sqlite|postgres|all]
#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/bench/private_postgres.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"

namespace es = gamebot::eventstore;
namespace harness = gamebot::harness;
using namespace std::chrono_literals;

namespace {

struct Sample {
  double seconds = 0;
  long rss_kib = 0;
  long fds = 0;
  long server_connections = -1;  // PostgreSQL only
};

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

long open_fds() {
  long n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

struct Totals {
  std::atomic<std::uint64_t> appended{0}, read{0}, delivered{0}, isolation_cycles{0}, errors{0};
};

void note_error(Totals& totals, const std::exception& e) {
  if (totals.errors++ < 10) std::fprintf(stderr, "soak error: %s\n", e.what());
}

// One round on a fresh store at `url`, for `length`.
void round(const std::string& url, std::chrono::milliseconds length, Totals& totals) {
  es::EventStore store = es::open(url);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.reserve(2);
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 random(static_cast<unsigned>(w + 1));
      while (!stop) {
        try {
          std::vector<es::EventData> batch(1 + random() % 20);
          for (auto& event : batch) {
            event.type = "soak";
            event.data = std::string(200, 'x');
          }
          const std::string stream = fmt::format("soak-{}", random() % 200);
          if (store.append(stream, es::ExpectedVersion::any(), batch).ok()) {
            totals.appended += batch.size();
          }
        } catch (const std::exception& e) {
          note_error(totals, e);
        }
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937 random(7);
    while (!stop) {
      try {
        for (const auto& event : store.all_forward(1, 500)) {
          (void)event;
          ++totals.read;
        }
        for (const auto& event : store.stream_forward(fmt::format("soak-{}", random() % 200))) {
          (void)event;
          ++totals.read;
        }
      } catch (const std::exception& e) {
        note_error(totals, e);
      }
    }
  });
  threads.emplace_back([&] {
    try {
      es::Subscription persistent = store.subscribe_persistent("soak", es::kAllStream);
      es::Subscription live = store.subscribe(es::kAllStream);
      while (!stop) {
        if (auto event = persistent.next(20ms)) {
          persistent.ack(*event);
          ++totals.delivered;
        }
        while (auto event = live.next(0ms)) ++totals.delivered;
      }
    } catch (const std::exception& e) {
      note_error(totals, e);
    }
  });
  std::this_thread::sleep_for(length);
  stop = true;
  for (auto& thread : threads) thread.join();
}

// Per-test isolation cycles through a harness DatabaseManager, for `length`.
void isolation_cycles(harness::Backend backend, const std::string& postgres_url,
                      std::chrono::milliseconds length, Totals& totals) {
  try {
    harness::HarnessOptions options;
    options.backend = backend;
    options.log_level = harness::LogLevel::warn;
    if (backend == harness::Backend::postgres)
      options.database_url = gamebot::repo::DatabaseUrl::parse(postgres_url);
    harness::DatabaseManager environment(options, harness::HarnessSetup{});
    environment.start();
    const auto end = std::chrono::steady_clock::now() + length;
    for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
      harness::TestContext context = environment.begin_test(fmt::format("soak test {}", i));
      es::EventData event;
      event.type = "soak";
      event.data = "cycle";
      if (!context.store().append("cycle", es::ExpectedVersion::no_stream(), event).ok()) {
        ++totals.errors;
      }
      if (!context.end().empty()) ++totals.errors;  // a leak is an error
      ++totals.isolation_cycles;
    }
    environment.finish();
  } catch (const std::exception& e) {
    note_error(totals, e);
  }
}

long server_connections(const std::string& url) {
  auto admin = gamebot::repo::connect(url);
  return static_cast<long>(
      admin
          ->query_value<std::int64_t>(
              "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
          .value_or(-1) -
      1);  // not this one
}

int soak(const std::string& backend, std::chrono::minutes minutes) {
  Totals totals;
  std::vector<Sample> samples;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + minutes;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("gamebot-soak-{}", ::getpid());
  std::filesystem::create_directories(dir);
  const std::string pg = backend == "postgres" ? gamebot::bench::bench_postgres_url() : "";
  for (int r = 0; std::chrono::steady_clock::now() < end; ++r) {
    std::string url;
    std::string schema = fmt::format("soak_{}_{}", ::getpid(), r);
    if (backend == "memory") {
      url = "memory:";
    } else if (backend == "sqlite") {
      url = "sqlite:" + (dir / fmt::format("round-{}.db", r)).string();
    } else {
      url = pg;
      url += pg.find('?') == std::string::npos ? "?" : "&";
      url += "schema=" + schema;
    }
    std::thread cycles([&] {
      isolation_cycles(backend == "memory"   ? harness::Backend::memory
                       : backend == "sqlite" ? harness::Backend::sqlite
                                             : harness::Backend::postgres,
                       pg, 4s, totals);
    });
    try {
      round(url, 4s, totals);
    } catch (const std::exception& e) {
      note_error(totals, e);
    }
    cycles.join();
    try {
      if (backend == "sqlite") {
        for (const char* suffix : {"", "-wal", "-shm"}) {
          std::filesystem::remove(dir / fmt::format("round-{}.db{}", r, suffix));
        }
      } else if (backend == "postgres") {
        gamebot::repo::connect(pg)->execute_batch(
            "DROP SCHEMA " + gamebot::repo::quote_identifier(schema) + " CASCADE");
      }
    } catch (const std::exception& e) {
      note_error(totals, e);
    }
    Sample sample;
    sample.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sample.rss_kib = rss_kib();
    sample.fds = open_fds();
    if (backend == "postgres") sample.server_connections = server_connections(pg);
    samples.push_back(sample);
    std::printf("%s t=%.0fs rss=%ld KiB fds=%ld connections=%ld appended=%lu errors=%lu\n",
                backend.c_str(), sample.seconds, sample.rss_kib, sample.fds,
                sample.server_connections, static_cast<unsigned long>(totals.appended.load()),
                static_cast<unsigned long>(totals.errors.load()));
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  // Warm-up: allocator arenas, statement caches and the template settle in the first rounds.
  const Sample& first = samples[std::min<std::size_t>(samples.size() - 1, samples.size() / 10)];
  const Sample& last = samples.back();
  const bool rss_flat = last.rss_kib <= first.rss_kib * 12 / 10 + 4096;
  const bool fds_flat = last.fds <= first.fds;
  const bool connections_flat = last.server_connections <= first.server_connections;
  std::printf(
      "soak %s: %.0f s, %zu rounds; appended %lu, read %lu, delivered %lu, isolation cycles %lu, "
      "errors %lu; rss %ld -> %ld KiB (%s), fds %ld -> %ld (%s), server connections %ld -> %ld "
      "(%s)\n",
      backend.c_str(), last.seconds, samples.size(),
      static_cast<unsigned long>(totals.appended.load()),
      static_cast<unsigned long>(totals.read.load()),
      static_cast<unsigned long>(totals.delivered.load()),
      static_cast<unsigned long>(totals.isolation_cycles.load()),
      static_cast<unsigned long>(totals.errors.load()), first.rss_kib, last.rss_kib,
      rss_flat ? "flat" : "GREW", first.fds, last.fds, fds_flat ? "flat" : "GREW",
      first.server_connections, last.server_connections, connections_flat ? "flat" : "GREW");
  return totals.errors == 0 && rss_flat && fds_flat && connections_flat ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  long minutes = 10;
  std::string backend = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--minutes" && i + 1 < argc) {
      minutes = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--backend" && i + 1 < argc) {
      backend = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: gamebot-soak [--minutes N] [--backend memory|sqlite|postgres|all]\n");
      return 2;
    }
  }
  if (minutes < 1) minutes = 1;
  int status = 0;
  for (const char* each : {"memory", "sqlite", "postgres"}) {
    if (backend == "all" || backend == each) status |= soak(each, std::chrono::minutes(minutes));
  }
  return status;
}
