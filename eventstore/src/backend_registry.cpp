#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/memory_backend.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"

namespace gamebot::eventstore {

namespace {

std::shared_ptr<Backend> open_memory(std::string_view url) {
  if (url != "memory:" && url != "memory://") {
    throw InvalidArgument(
        fmt::format("memory URL '{}' has a path; only \"memory:\" is accepted", url));
  }
  return std::make_shared<MemoryBackend>();
}

std::shared_ptr<Backend> open_sqlite(std::string_view url) {
  return SqliteBackend::open(url);
}

std::shared_ptr<Backend> open_postgres(std::string_view url) {
  return PostgresBackend::open(url);
}

// Schemes built into this library (named here, not self-registered: a static
// library drops objects nothing references); others come through
// register_backend_scheme.
struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory, std::less<>> factories{{"memory", &open_memory},
                                                               {"sqlite", &open_sqlite},
                                                               {"postgres", &open_postgres},
                                                               {"postgresql", &open_postgres}};
};

Registry& registry() {
  static Registry instance;
  return instance;
}

bool valid_scheme(std::string_view scheme) {
  if (scheme.empty()) return false;
  return std::all_of(scheme.begin(), scheme.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

void register_backend_scheme(std::string scheme, BackendFactory factory) {
  if (!valid_scheme(scheme)) {
    throw InvalidArgument(fmt::format("'{}' is not a lower-case URL scheme", scheme));
  }
  if (!factory) throw InvalidArgument(fmt::format("no factory for scheme '{}'", scheme));
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories.insert_or_assign(std::move(scheme), std::move(factory));
}

std::vector<std::string> registered_backend_schemes() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> schemes;
  for (const auto& [scheme, factory] : r.factories) schemes.push_back(scheme);
  return schemes;
}

EventStore open(std::string_view url, StoreOptions options) {
  const std::size_t colon = url.find(':');
  if (colon == std::string_view::npos) {
    throw InvalidArgument(fmt::format(
        "event store URL '{}' has no scheme (expected memory:, sqlite:..., postgres://...)", url));
  }
  const std::string_view scheme = url.substr(0, colon);
  BackendFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(scheme);
    if (it == r.factories.end()) {
      std::string known;
      for (const auto& [name, f] : r.factories) known += (known.empty() ? "" : ", ") + name;
      throw InvalidArgument(fmt::format("unknown event store URL scheme '{}' in '{}' (known: {})",
                                        scheme, url, known));
    }
    factory = it->second;
  }
  std::shared_ptr<Backend> backend = factory(url);
  if (!backend)
    throw Error(FaultClass::internal, fmt::format("factory of '{}' returned no backend", scheme));
  return EventStore(std::move(backend), options);
}

}  // namespace gamebot::eventstore
