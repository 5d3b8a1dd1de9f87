// repo::embed_sql_name against a real server: every token and place it offers,
// with hostile names, comes back from the server as exactly the name, also
// where the server does not check function bodies; names it cannot embed
// safely are refused as configuration errors before any SQL is sent. Database
// names enter CREATE/DROP DATABASE and COMMENT ON DATABASE the same way.

#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot;
using namespace gamebot::repo;

namespace {

template <typename Action>
std::optional<FaultClass> fault_of(Action&& action) {
  try {
    action();
  } catch (const gamebot::Error& e) {
    return e.fault();
  }
  return std::nullopt;
}

std::string pid() {
  return std::to_string(::getpid());
}

// A table of this test process that no name may reach.
std::string victim() {
  return "public.victim_" + pid();
}

// Names every token and place must carry through unchanged.
std::vector<std::string> embeddable_names() {
  return {
      "plain_" + pid(),
      "o'brien'); DROP TABLE " + victim() + "; --",
      "x\"; DROP TABLE " + victim() + "; --",
      "Ünïcödé " + pid(),
      "'" + pid(),
      "\"" + pid(),
  };
}

// Names that would end a dollar-quoted body: fine in a statement, refused inside a body.
std::vector<std::string> dollar_names() {
  return {"$", "$$", "a$fn$;DROP TABLE " + victim() + "; SELECT $fn$", "$1" + pid()};
}

// Names that no token or place accepts.
std::vector<std::string> unembeddable_names() {
  return {"", std::string("a\0b", 3), "bad \xff utf8", "bad \xc0\xaf overlong", "\xed\xa0\x80"};
}

// Runs `sql`, a function body embedding `token`, on a fresh connection to `url`, and returns
// what the body returned.
std::string run_in_body(const DatabaseUrl& url, const std::string& body) {
  auto connection = connect(url);
  connection->execute_batch(
      "CREATE FUNCTION pg_temp.embedded() RETURNS text LANGUAGE plpgsql AS $fn$ " + body + " $fn$");
  return connection->query_value<std::string>("SELECT pg_temp.embedded()").value_or("<null>");
}

struct Database {
  Connection& admin;
  std::string name;
  Database(Connection& admin_in, std::string name_in, const std::string& options)
      : admin(admin_in), name(std::move(name_in)) {
    admin.execute_batch("DROP DATABASE IF EXISTS " + quote_identifier(name));
    admin.execute_batch("CREATE DATABASE " + quote_identifier(name) + options);
  }
  ~Database() {
    try {
      admin.execute_batch("DROP DATABASE IF EXISTS " + quote_identifier(name) + " WITH (FORCE)");
    } catch (...) {
      // Leftovers only cost space on the throwaway server.
    }
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
};

}  // namespace

TEST_CASE("every token and place carries a hostile name to the server unchanged",
          "[repo][postgres][identifier]") {
  auto admin = connect(gamebot::testing::postgres_url());
  Database lax(*admin, "gamebot lax $fn$ 'bodies' " + pid(), "");
  admin->execute_batch("ALTER DATABASE " + quote_identifier(lax.name) +
                       " SET check_function_bodies = off");
  const DatabaseUrl strict_url = DatabaseUrl::parse(gamebot::testing::postgres_url());
  for (const DatabaseUrl& url : {strict_url, strict_url.with_database(lax.name)}) {
    INFO("database " << url.database());
    auto connection = connect(url);
    connection->execute_batch("CREATE TABLE " + victim() + " (id int)");
    auto names = embeddable_names();
    for (const auto& name : names) {
      INFO("name " << name);
      const std::string q = embed_sql_name(name, SqlToken::identifier);
      const std::string body_q =
          embed_sql_name(name, SqlToken::identifier, SqlPlace::dollar_quoted_body);
      CHECK(body_q == q);
      connection->execute_batch("CREATE SCHEMA " + q + "; CREATE TABLE " + q + ".t (v text)");
      connection->execute("INSERT INTO " + q + ".t VALUES ($1)", name);
      CHECK(
          connection->query_value<std::string>("SELECT " + embed_sql_name(name, SqlToken::literal))
              .value_or("") == name);
      CHECK(run_in_body(url,
                        "BEGIN RETURN " +
                            embed_sql_name(name, SqlToken::literal, SqlPlace::dollar_quoted_body) +
                            "; END") == name);
      CHECK(run_in_body(url, "BEGIN RETURN (SELECT v FROM " + body_q + ".t); END") == name);
      CHECK(connection
                ->query_value<std::int64_t>("SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                                            name)
                .value_or(0) == 1);
      connection->execute_batch("DROP SCHEMA " + q + " CASCADE");
    }
    for (const auto& name : dollar_names()) {
      INFO("name " << name);
      CHECK(
          connection->query_value<std::string>("SELECT " + embed_sql_name(name, SqlToken::literal))
              .value_or("") == name);
      for (SqlToken token : {SqlToken::identifier, SqlToken::literal}) {
        CHECK(fault_of([&] { embed_sql_name(name, token, SqlPlace::dollar_quoted_body); }) ==
              FaultClass::configuration);
      }
    }
    CHECK(connection->query_value<bool>("SELECT to_regclass($1) IS NOT NULL", victim())
              .value_or(false));
    connection->execute_batch("DROP TABLE " + victim());
  }
}

TEST_CASE("backslashes stay out of literals, which standard_conforming_strings would change",
          "[repo][postgres][identifier]") {
  for (const std::string& name :
       std::vector<std::string>{"\\", "a\\';DROP TABLE " + victim() + ";--", "\\x27"}) {
    INFO("name " << name);
    for (SqlPlace place : {SqlPlace::statement, SqlPlace::dollar_quoted_body}) {
      CHECK(fault_of([&] { embed_sql_name(name, SqlToken::literal, place); }) ==
            FaultClass::configuration);
    }
    // As an identifier a backslash is just a character.
    auto connection = connect(gamebot::testing::postgres_url());
    const std::string q = quote_identifier(name);
    connection->execute_batch("CREATE TEMPORARY TABLE " + q + " (v int)");
    CHECK(connection
              ->query_value<std::int64_t>(
                  "SELECT count(*) FROM pg_class WHERE relname = $1 AND relpersistence = 't'", name)
              .value_or(0) == 1);
  }
}

TEST_CASE("names that nothing can carry are refused before any SQL is sent",
          "[repo][postgres][identifier]") {
  auto names = unembeddable_names();
  names.push_back(std::string(64, 'x'));
  for (const auto& name : names) {
    INFO("name " << name);
    for (SqlPlace place : {SqlPlace::statement, SqlPlace::dollar_quoted_body}) {
      CHECK(fault_of([&] { embed_sql_name(name, SqlToken::identifier, place); }) ==
            FaultClass::configuration);
      if (name.size() <= 63) {
        CHECK(fault_of([&] { embed_sql_name(name, SqlToken::literal, place); }) ==
              FaultClass::configuration);
      }
    }
  }
  CHECK(quote_identifier(std::string(63, 'x')) == "\"" + std::string(63, 'x') + "\"");
  // A literal has no length limit: it is no name.
  CHECK(embed_sql_name(std::string(100, 'x'), SqlToken::literal).size() == 102);
}

TEST_CASE("database names with '$', quotes and backslashes are created, commented and dropped",
          "[repo][postgres][identifier]") {
  auto admin = connect(gamebot::testing::postgres_url());
  admin->execute_batch("CREATE TABLE " + victim() + " (id int)");
  std::vector<std::string> names = {
      "gb$fn$ db " + pid(),
      "gb$$;DROP TABLE " + victim() + ";$$",
      "gb 'quoted' \"db\" " + pid(),
      "gb\\db " + pid(),
  };
  for (const auto& name : names) {
    INFO("database " << name);
    {
      Database database(*admin, name, "");
      const bool literal_safe = name.find('\\') == std::string::npos;
      if (literal_safe) {
        admin->execute_batch("COMMENT ON DATABASE " + quote_identifier(name) + " IS " +
                             embed_sql_name(name, SqlToken::literal));
        CHECK(admin
                  ->query_value<std::string>(
                      "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                      "WHERE datname = $1",
                      name)
                  .value_or("") == name);
      } else {
        CHECK(fault_of([&] { embed_sql_name(name, SqlToken::literal); }) ==
              FaultClass::configuration);
      }
      CHECK(admin
                ->query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                            name)
                .value_or(0) == 1);
    }
    CHECK(
        admin
            ->query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1", name)
            .value_or(-1) == 0);
  }
  for (const auto& name : unembeddable_names()) {
    CHECK(fault_of([&] { quote_identifier(name); }) == FaultClass::configuration);
  }
  CHECK(admin->query_value<bool>("SELECT to_regclass($1) IS NOT NULL", victim()).value_or(false));
  admin->execute_batch("DROP TABLE " + victim());
}
