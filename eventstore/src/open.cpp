#include "gamebot/eventstore/open.hpp"

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/memory_backend.hpp"

namespace gamebot::eventstore {

repo::DatabaseUrl parse_url(std::string_view text) {
  try {
    return repo::DatabaseUrl::parse(text);
  } catch (const InvalidArgument&) {
    throw;
  } catch (const Error& error) {
    if (error.fault() != FaultClass::configuration) throw;
    throw InvalidArgument(error.message());
  }
}

EventStore open(const repo::DatabaseUrl& url, OpenOptions options) {
  std::shared_ptr<Backend> backend;
  switch (url.driver()) {
    case repo::Driver::memory:
      backend = std::make_shared<MemoryBackend>();
      break;
    case repo::Driver::sqlite:
      backend = SqliteBackend::open(url, options.sqlite);
      break;
    case repo::Driver::postgres:
      backend = PostgresBackend::open(url, std::move(options.postgres));
      break;
  }
  return EventStore(std::move(backend), options.store);
}

EventStore open(std::string_view url, StoreOptions options) {
  OpenOptions open_options;
  open_options.store = options;
  return open(parse_url(url), std::move(open_options));
}

}  // namespace gamebot::eventstore
