#pragma once

// Opening an event store from a database URL. The URL is a repo::DatabaseUrl,
// parsed once where the text enters (a flag, the environment, a command line);
// open() picks the backend from what the URL names, so no caller dispatches on
// schemes itself. Backends outside this library are not opened by URL: wrap
// them directly, EventStore(std::make_shared<MyBackend>(...), options).

#include <string_view>

#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/repo/database_url.hpp"

namespace gamebot::eventstore {

// Everything open() needs besides the URL. Each backend reads only its own
// field; what the URL itself sets wins over these (sqlite busy_timeout;
// postgres schema, notify, json_data).
struct OpenOptions {
  StoreOptions store{};               // the EventStore's options, every backend
  SqliteBackendOptions sqlite{};      // sqlite: URLs
  PostgresBackendOptions postgres{};  // postgres:// and postgresql:// URLs
};

// repo::DatabaseUrl::parse with its errors as InvalidArgument (the store's
// error for bad input; FaultClass::configuration, no secret in the message).
repo::DatabaseUrl parse_url(std::string_view text);

// Opens the store `url` names: memory: (a fresh, private in-memory store),
// sqlite:PATH / sqlite::memory:, postgres://... / postgresql://... .
// InvalidArgument for bad options; backend construction errors propagate
// (connectivity, authentication, schema, ...).
EventStore open(const repo::DatabaseUrl& url, OpenOptions options = {});

// Convenience: open(parse_url(url), {options}).
EventStore open(std::string_view url, StoreOptions options = {});

}  // namespace gamebot::eventstore
