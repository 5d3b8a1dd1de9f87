// Helper process of the multi-process PostgreSQL tests (not a test itself).
// Usage: eventstore_postgres_child ROLE URL SCHEMA ARGS...
//   reader EXPECTED TIMEOUT_MS  subscribe to $all from the origin (persistent,
//                               no polling: only LISTEN/NOTIFY wakes it), print
//                               READY, take EXPECTED events, check that they
//                               are positions 1..EXPECTED in order, each once,
//                               with gap-free versions per stream; print
//                               "OK <n>" or "FAIL <why>".
//   writer STREAM COUNT BATCH   append COUNT events to STREAM in batches of
//                               BATCH at exact expected versions; print DONE.
//   late STREAM COUNT           append COUNT events inside a repo transaction,
//                               print "APPENDED <first position>", wait for a
//                               line on stdin, commit, print COMMITTED.
//   fenced-owner NAME STREAM    the owner side of the lease fencing scenario
//                               (tests/support lease_fencing.hpp): subscribe
//                               (max_in_flight 5), take 1..5 acking 1..2, each
//                               printed as "DELIVERED <n> <token> <steady ns>";
//                               print MIDBATCH, wait for a line on stdin, ack
//                               3, 4, 5, call next(): DELIVERED, or "FENCED
//                               <fault>" / "ERROR <fault>"; print END.
// Exit code 0 on success, 1 on a failed check, 2 on an exception.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/repo.hpp"

namespace es = gamebot::eventstore;

namespace {

es::PostgresBackendOptions options_for(const std::string& schema) {
  es::PostgresBackendOptions options;
  options.schema = schema;
  return options;
}

es::EventData event(const std::string& stream, std::int64_t version) {
  es::EventData e;
  e.type = "Appended";
  e.data = stream + "#" + std::to_string(version);
  return e;
}

int reader(const std::string& url, const std::string& schema, long expected, long timeout_ms) {
  es::StoreOptions store_options;
  store_options.poll_interval = std::chrono::hours(1);  // only notifications wake us
  es::EventStore store(es::PostgresBackend::open(url, options_for(schema)), store_options);
  es::PersistentSubscriptionOptions sub_options;
  sub_options.max_in_flight = 1000;
  es::Subscription sub =
      store.subscribe_persistent("multi-process-reader", std::string(es::kAllStream), sub_options);
  std::cout << "READY" << std::endl;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::set<gamebot::Uuid> ids;
  std::map<std::string, std::int64_t> versions;
  long seen = 0;
  while (seen < expected) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::cout << "FAIL timed out after " << seen << " of " << expected << " events" << std::endl;
      return 1;
    }
    auto e = sub.next(left);
    if (!e) continue;
    ++seen;
    if (e->global_position != seen) {
      std::cout << "FAIL event " << seen << " has position " << e->global_position << std::endl;
      return 1;
    }
    if (!ids.insert(e->event_id).second) {
      std::cout << "FAIL event id delivered twice at position " << seen << std::endl;
      return 1;
    }
    std::int64_t& version = versions[std::string(e->stream_id)];
    if (e->stream_version != version + 1) {
      std::cout << "FAIL stream " << e->stream_id << " version " << e->stream_version << " after "
                << version << std::endl;
      return 1;
    }
    version = e->stream_version;
    sub.ack(*e);
  }
  std::cout << "OK " << seen << std::endl;
  return 0;
}

int writer(const std::string& url, const std::string& schema, const std::string& stream, long count,
           long batch) {
  es::EventStore store(es::PostgresBackend::open(url, options_for(schema)));
  std::int64_t version = 0;
  while (version < count) {
    std::vector<es::EventData> events;
    for (long i = 0; i < batch && version + i < count; ++i) {
      events.push_back(event(stream, version + i + 1));
    }
    const auto result = store.append(stream, version, events);
    if (!result.ok()) {
      std::cout << "FAIL append at version " << version << ": " << es::to_string(result.status)
                << std::endl;
      return 1;
    }
    version = result.version;
  }
  std::cout << "DONE" << std::endl;
  return 0;
}

int late(const std::string& url, const std::string& schema, const std::string& stream, long count) {
  gamebot::repo::Repo repo = gamebot::repo::Repo::open(url);
  auto backend = std::make_shared<es::PostgresBackend>(repo, options_for(schema));
  es::EventStore store(backend);
  gamebot::repo::Transaction tx = repo.transaction();
  std::vector<es::EventData> events;
  for (long i = 0; i < count; ++i) events.push_back(event(stream, i + 1));
  const auto result = store.append(stream, 0, events);
  if (!result.ok()) {
    std::cout << "FAIL append: " << es::to_string(result.status) << std::endl;
    return 1;
  }
  std::cout << "APPENDED " << result.first_position << std::endl;
  std::string line;
  std::getline(std::cin, line);
  tx.commit();
  std::cout << "COMMITTED" << std::endl;
  return 0;
}

int fenced_owner(const std::string& url, const std::string& schema, const std::string& name,
                 const std::string& stream) {
  es::StoreOptions store_options;
  store_options.poll_interval = std::chrono::milliseconds(20);
  es::EventStore store(es::PostgresBackend::open(url, options_for(schema)), store_options);
  es::PersistentSubscriptionOptions sub_options;
  sub_options.max_in_flight = 5;
  es::Subscription sub = store.subscribe_persistent(name, stream, sub_options);
  const es::LeaseToken token = sub.lease_token().value_or(-1);
  auto print_delivery = [token](const es::RecordedEvent& e) {
    const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    std::cout << "DELIVERED " << e.event_number << " " << token << " " << at.count() << std::endl;
  };
  for (es::StreamVersion n = 1; n <= 5; ++n) {
    auto e = sub.next(std::chrono::seconds(5));
    if (!e) {
      std::cout << "FAIL no event " << n << std::endl;
      return 1;
    }
    print_delivery(*e);
    if (n <= 2) sub.ack(*e);
  }
  std::cout << "MIDBATCH" << std::endl;
  std::string line;
  std::getline(std::cin, line);
  for (es::StreamVersion n = 3; n <= 5; ++n) sub.ack(n);
  try {
    if (auto e = sub.next(std::chrono::seconds(2))) print_delivery(*e);
  } catch (const es::SubscriptionFenced& error) {
    std::cout << "FENCED " << gamebot::to_string(error.fault()) << std::endl;
  } catch (const gamebot::Error& error) {
    std::cout << "ERROR " << gamebot::to_string(error.fault()) << std::endl;
  }
  std::cout << "END" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: eventstore_postgres_child ROLE URL SCHEMA ARGS...\n";
    return 2;
  }
  const std::string role = argv[1];
  const std::string url = argv[2];
  const std::string schema = argv[3];
  try {
    if (role == "reader" && argc == 6)
      return reader(url, schema, std::stol(argv[4]), std::stol(argv[5]));
    if (role == "writer" && argc == 7) {
      return writer(url, schema, argv[4], std::stol(argv[5]), std::stol(argv[6]));
    }
    if (role == "late" && argc == 6) return late(url, schema, argv[4], std::stol(argv[5]));
    if (role == "fenced-owner" && argc == 6) return fenced_owner(url, schema, argv[4], argv[5]);
    std::cerr << "eventstore_postgres_child: bad arguments for role " << role << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cout << "FAIL exception: " << error.what() << std::endl;
    return 2;
  }
}
