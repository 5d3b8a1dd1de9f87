// PostgreSQL: schema and database names that need quoting (quotes, SQL,
// spaces, mixed case, non-ASCII) hold stores under exactly those names, keep
// them apart, and never touch anything else (the public schema, a bystander
// schema). Names that cannot be embedded safely in the store's SQL (a '$' that
// could end a function body, a backslash, NUL, invalid UTF-8, over 63 bytes)
// are refused as configuration errors before any SQL runs, also where the
// server would not even look into function bodies (check_function_bodies off).

#include "gamebot/testing/postgres.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/verify.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "test_schema.hpp"

namespace gamebot::reliability {
namespace {

using eventstore::EventData;
using eventstore::EventStore;
using eventstore::ExpectedVersion;

EventData event(std::string type, std::string data) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

std::int64_t count_schemas(repo::Connection& connection, const std::string& name) {
  return connection
      .query_value<std::int64_t>(
          "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", name)
      .value_or(-1);
}

// Drops the listed schemas, whatever a failed assertion left behind.
struct SchemaCleanup {
  std::vector<std::string> names;
  ~SchemaCleanup() {
    try {
      auto admin = repo::connect(gamebot::testing::postgres_url());
      for (const auto& name : names) {
        admin->execute_batch("DROP SCHEMA IF EXISTS " + repo::quote_identifier(name) + " CASCADE");
      }
    } catch (...) {
      // Leftovers only cost space on the throwaway server.
    }
  }
};

TEST_CASE("schema names needing quoting hold separate stores and touch nothing else",
          "[reliability][hostile][postgres]") {
  const std::string pid = std::to_string(::getpid());
  // The backend's functions name their sequences in string literals
  // ('<schema>.positions'::regclass): a single quote must be doubled there too.
  const std::vector<std::string> names = {
      "Game Events " + pid,
      "o'brien'); DROP SCHEMA public CASCADE; --" + pid,
      "x\"; DROP SCHEMA public CASCADE; --" + pid,
      "Ünïcödé schéma " + pid,
      "MiXeD" + pid,
  };
  SchemaCleanup cleanup{names};
  eventstore::testing::TestSchema bystander("hostile_bystander");
  {
    EventStore store(bystander.open());
    REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", "bystander")).ok());
  }
  for (const auto& name : names) {
    INFO(name);
    eventstore::PostgresBackendOptions options;
    options.schema = name;
    EventStore store(eventstore::PostgresBackend::open(gamebot::testing::postgres_url(), options));
    REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", name)).ok());
  }

  auto admin = repo::connect(gamebot::testing::postgres_url());
  CHECK(count_schemas(*admin, "public") == 1);
  for (const auto& name : names) {
    INFO(name);
    CHECK(count_schemas(*admin, name) == 1);
    eventstore::PostgresBackendOptions options;
    options.schema = name;
    EventStore store(eventstore::PostgresBackend::open(gamebot::testing::postgres_url(), options));
    auto all = store.read_all_forward();
    REQUIRE(all.events.size() == 1);
    CHECK(all.events[0].data == name);
  }
  EventStore again(bystander.open());
  auto read = again.read_stream_forward("s");
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].data == "bystander");
}

TEST_CASE("a database whose name needs quoting is used by name and leaves others intact",
          "[reliability][hostile][postgres]") {
  const std::string name = fmt::format("gamebot \"odd\" db's; DROP {}", ::getpid());
  auto admin = repo::connect(gamebot::testing::postgres_url());
  admin->execute_batch("DROP DATABASE IF EXISTS " + repo::quote_identifier(name));
  admin->execute_batch("CREATE DATABASE " + repo::quote_identifier(name));
  struct Dropper {
    repo::Connection& admin;
    std::string name;
    ~Dropper() {
      try {
        admin.execute_batch("DROP DATABASE IF EXISTS " + repo::quote_identifier(name) +
                            " WITH (FORCE)");
      } catch (...) {
        // Leftovers only cost space on the throwaway server.
      }
    }
  } dropper{*admin, name};

  const repo::DatabaseUrl url =
      repo::DatabaseUrl::parse(gamebot::testing::postgres_url()).with_database(name);
  {
    EventStore store(std::make_shared<eventstore::PostgresBackend>(repo::Repo::open(url)));
    REQUIRE(store.append("s", ExpectedVersion::no_stream(), event("E", "odd database")).ok());
  }
  // Through the URL text too: the name percent-encoded in the path.
  EventStore store = eventstore::open(url.redacted());
  auto read = store.read_stream_forward("s");
  REQUIRE(read.events.size() == 1);
  CHECK(read.events[0].data == "odd database");
  CHECK(admin->query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                         name) == 1);
  CHECK(admin->query_value<std::int64_t>(
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'") == 1);
}

// The fault class of what `action` throws; nullopt when it throws nothing.
template <typename Action>
std::optional<FaultClass> fault_of(Action&& action) {
  try {
    action();
  } catch (const gamebot::Error& e) {
    return e.fault();
  }
  return std::nullopt;
}

bool table_exists(repo::Connection& connection, const std::string& qualified) {
  return connection.query_value<bool>("SELECT to_regclass($1) IS NOT NULL", qualified)
      .value_or(false);
}

TEST_CASE("schema names that could end a function body or literal are refused before any SQL runs",
          "[reliability][hostile][postgres]") {
  const std::string pid = std::to_string(::getpid());
  const std::string victim = "victim" + pid;
  const std::vector<std::string> names = {
      "a$fn$;DROP TABLE IF EXISTS public." + victim + "; SELECT $fn$",
      "a$fn$;DROP TABLE public." + victim + "; SELECT $fn$",
      "$$;DROP TABLE public." + victim + ";$$",
      "a$do$;DROP TABLE public." + victim + ";$do$",
      "$",
      "a\\';DROP TABLE public." + victim + ";--",
      "\\",
      std::string("a\0b", 3),
      std::string(64, 'x'),
      "bad \xff\xfe utf8",
  };
  // Where the server does not check function bodies (settable per role or database), a body
  // ended early by the name would be created without complaint, and the rest would run.
  const std::string lax_database = "gamebot lax bodies " + pid;
  auto admin = repo::connect(gamebot::testing::postgres_url());
  admin->execute_batch("DROP DATABASE IF EXISTS " + repo::quote_identifier(lax_database));
  admin->execute_batch("CREATE DATABASE " + repo::quote_identifier(lax_database));
  struct Dropper {
    repo::Connection& admin;
    std::string name;
    ~Dropper() {
      try {
        admin.execute_batch("DROP DATABASE IF EXISTS " + repo::quote_identifier(name) +
                            " WITH (FORCE)");
      } catch (...) {
        // Leftovers only cost space on the throwaway server.
      }
    }
  } dropper{*admin, lax_database};
  admin->execute_batch("ALTER DATABASE " + repo::quote_identifier(lax_database) +
                       " SET check_function_bodies = off");
  const repo::DatabaseUrl default_url = repo::DatabaseUrl::parse(gamebot::testing::postgres_url());
  const repo::DatabaseUrl lax_url = default_url.with_database(lax_database);

  // The names a server could hold (old code created some), for the cleanup and the final check.
  const std::vector<std::string> storable(names.begin(), names.end() - 3);
  SchemaCleanup cleanup{storable};
  for (const repo::DatabaseUrl& url : {default_url, lax_url}) {
    INFO("database " << url.database());
    auto connection = repo::connect(url);
    connection->execute_batch("CREATE TABLE public." + victim + " (id int)");
    CHECK(connection->query_value<std::string>("SHOW check_function_bodies").value_or("") ==
          (url.database() == lax_database ? "off" : "on"));
    for (const auto& name : names) {
      INFO("schema name " << name);
      eventstore::PostgresBackendOptions options;
      options.schema = name;
      CHECK(fault_of([&] {
              EventStore store(
                  std::make_shared<eventstore::PostgresBackend>(repo::Repo::open(url), options));
            }) == FaultClass::configuration);
      CHECK(fault_of([&] { eventstore::postgres_event_store_migrations(name); }) ==
            FaultClass::configuration);
      CHECK(fault_of([&] { eventstore::postgres_event_store_migrator(name); }) ==
            FaultClass::configuration);
      REQUIRE(table_exists(*connection, "public." + victim));
    }
    for (const auto& name : storable) CHECK(count_schemas(*connection, name) == 0);
    connection->execute_batch("DROP TABLE public." + victim);
  }
}

}  // namespace
}  // namespace gamebot::reliability
