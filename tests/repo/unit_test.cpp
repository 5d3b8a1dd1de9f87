#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "gamebot/repo/repo.hpp"

using namespace gamebot;
using namespace gamebot::repo;

namespace {
FaultClass fault_of(std::string_view url) {
  try {
    DatabaseUrl::parse(url);
  } catch (const gamebot::Error& e) {
    return e.fault();
  }
  return FaultClass::internal;
}
std::string message_of(std::string_view url) {
  try {
    DatabaseUrl::parse(url);
  } catch (const gamebot::Error& e) {
    return e.what();
  }
  return "(parsed)";
}
}  // namespace

TEST_CASE("sqlite URLs parse to a path or an in-memory database", "[repo][url]") {
  auto rel = DatabaseUrl::parse("sqlite:data/app.db");
  CHECK(rel.driver() == Driver::sqlite);
  CHECK(rel.sqlite_path() == "data/app.db");
  CHECK(DatabaseUrl::parse("sqlite:/tmp/x.db").sqlite_path() == "/tmp/x.db");
  CHECK(DatabaseUrl::parse("sqlite:///tmp/x.db").sqlite_path() == "/tmp/x.db");
  auto mem = DatabaseUrl::parse("sqlite::memory:");
  CHECK(mem.sqlite_in_memory());
  CHECK(mem.sqlite_shared_name().empty());
  auto shared = DatabaseUrl::parse("sqlite::memory:?shared=abc");
  CHECK(shared.sqlite_shared_name() == "abc");
  auto options = DatabaseUrl::parse("sqlite:x.db?busy_timeout=100&synchronous=full");
  CHECK(options.parameter("busy_timeout") == "100");
  CHECK(options.redacted() == "sqlite:x.db?busy_timeout=100&synchronous=full");
  CHECK(shared.redacted() == "sqlite::memory:?shared=abc");
}

TEST_CASE("postgres URIs parse user, password, hosts, port, database and parameters",
          "[repo][url]") {
  auto url = DatabaseUrl::parse(
      "postgresql://me:s%40cret@db.example:6543/app?application_name=x&sslmode=disable");
  CHECK(url.driver() == Driver::postgres);
  CHECK(url.user() == "me");
  CHECK(url.password() == "s@cret");
  CHECK(url.host() == "db.example");
  CHECK(url.port() == "6543");
  CHECK(url.database() == "app");
  CHECK(url.parameter("application_name") == "x");
  CHECK(url.redacted() ==
        "postgresql://me:***@db.example:6543/app?application_name=x&sslmode=disable");

  auto socket = DatabaseUrl::parse("postgres://postgres@%2Ftmp%2Fpg%20dir/db");
  CHECK(socket.host() == "/tmp/pg dir");
  auto query_host = DatabaseUrl::parse("postgresql://postgres@/db?host=/tmp/pg");
  CHECK(query_host.host() == "/tmp/pg");
  CHECK(query_host.redacted() == "postgresql://postgres@/db?host=/tmp/pg");
  auto multi = DatabaseUrl::parse("postgresql://h1:5432,[::1]:5433/db");
  CHECK(multi.host() == "h1,::1");
  CHECK(multi.port() == "5432,5433");
  CHECK(DatabaseUrl::parse("postgresql://").host().empty());
  CHECK(DatabaseUrl::parse("postgresql://localhost").database().empty());
}

TEST_CASE("libpq key=value strings parse including quoted values", "[repo][url]") {
  auto url = DatabaseUrl::parse("host=/tmp/pg port=5433 dbname=app user=me password='a b\\'c'");
  CHECK(url.driver() == Driver::postgres);
  CHECK(url.host() == "/tmp/pg");
  CHECK(url.port() == "5433");
  CHECK(url.password() == "a b'c");
  CHECK(url.redacted().find("a b") == std::string::npos);
  CHECK(url.describe_target() == "host /tmp/pg port 5433 user me database app");
}

TEST_CASE("malformed URLs are configuration errors naming the bad part", "[repo][url]") {
  CHECK(fault_of("mysql://x") == FaultClass::configuration);
  CHECK_THAT(message_of("mysql://x"), Catch::Contains("scheme 'mysql'"));
  CHECK_THAT(message_of("postgresql://h:99999/db"), Catch::Contains("port '99999'"));
  CHECK_THAT(message_of("postgresql://h/db?bogus_key=1"), Catch::Contains("'bogus_key'"));
  CHECK_THAT(message_of("postgresql://u:p%zzass@h/db"), Catch::Contains("password"));
  CHECK_THAT(message_of("sqlite:"), Catch::Contains("path"));
  CHECK_THAT(message_of("sqlite://host/x.db"), Catch::Contains("path"));
  CHECK_THAT(message_of("sqlite:x.db?journal=wal"), Catch::Contains("'journal'"));
  CHECK_THAT(message_of("host=/tmp dbname"), Catch::Contains("'dbname'"));
  CHECK_THAT(message_of(""), Catch::Contains("empty"));
  CHECK_THAT(message_of("just-text"), Catch::Contains("no scheme"));
}

TEST_CASE("no URL error or rendering contains the password", "[repo][url]") {
  const std::string secret = "Hunter2Secret";
  for (std::string text :
       {"postgresql://u:" + secret + "@h:notaport/db", "postgresql://u:" + secret + "@h/db?bogus=1",
        "postgresql://u:" + secret + "/x@h/db", "postgresql://u:" + secret + "?x@h/db",
        "postgresql://u@h/db?password=" + secret + "&bad%zz=1",
        "user=u password=" + secret + " port=0"}) {
    CHECK(message_of(text).find(secret) == std::string::npos);
  }
  auto ok = DatabaseUrl::parse("postgresql://u@h/db?password=" + secret);
  CHECK(ok.password() == secret);
  CHECK(ok.redacted().find(secret) == std::string::npos);
  CHECK(ok.to_string().find(secret) == std::string::npos);
  CHECK(ok.describe_target().find(secret) == std::string::npos);
  CHECK(ok.with_database("other").database() == "other");
}

TEST_CASE("identifiers are quoted by one function", "[repo][identifier]") {
  CHECK(quote_identifier("plain") == "\"plain\"");
  CHECK(quote_identifier("we\"ird") == "\"we\"\"ird\"");
  CHECK(quote_qualified("s", "t") == "\"s\".\"t\"");
  CHECK(quote_qualified("", "t") == "\"t\"");
  CHECK_THROWS_AS(quote_identifier(""), gamebot::Error);
  CHECK_THROWS_AS(quote_identifier(std::string(64, 'x')), gamebot::Error);
  CHECK_THROWS_AS(quote_identifier(std::string("a\0b", 3)), gamebot::Error);
}

TEST_CASE("SQLSTATEs and sqlite codes map to fault classes", "[repo][errors]") {
  CHECK(classify_sqlstate("08006") == FaultClass::connectivity);
  CHECK(classify_sqlstate("28P01") == FaultClass::authentication);
  CHECK(classify_sqlstate("40001") == FaultClass::concurrency);
  CHECK(classify_sqlstate("40P01") == FaultClass::concurrency);
  CHECK(sqlstate_transaction_retryable("40001"));
  CHECK(sqlstate_transaction_retryable("40P01"));
  CHECK_FALSE(sqlstate_transaction_retryable("23505"));
  CHECK(classify_sqlstate("23505") == FaultClass::integrity);
  CHECK(classify_sqlstate("42P01") == FaultClass::schema);
  CHECK(classify_sqlstate("42601") == FaultClass::internal);
  CHECK(classify_sqlstate("57014") == FaultClass::timeout);
  CHECK(classify_sqlstate("57P01") == FaultClass::connectivity);
  CHECK(classify_sqlstate("3D000") == FaultClass::configuration);
  CHECK(classify_sqlstate("XX000") == FaultClass::internal);
  CHECK(classify_sqlite(SQLITE_BUSY, "") == FaultClass::concurrency);
  CHECK(sqlite_transaction_retryable(SQLITE_BUSY_SNAPSHOT));
  CHECK(sqlite_transaction_retryable(SQLITE_LOCKED));
  CHECK(classify_sqlite(SQLITE_CONSTRAINT_UNIQUE, "") == FaultClass::integrity);
  CHECK(classify_sqlite(SQLITE_CORRUPT, "") == FaultClass::integrity);
  CHECK(classify_sqlite(SQLITE_NOTADB, "file is not a database") == FaultClass::integrity);
  CHECK(classify_sqlite(SQLITE_ERROR, "unsupported file format") == FaultClass::integrity);
  CHECK(classify_sqlite(SQLITE_CANTOPEN, "") == FaultClass::configuration);
  CHECK(classify_sqlite(SQLITE_ERROR, "no such table: x") == FaultClass::schema);
  CHECK(classify_sqlite(SQLITE_ERROR, "near \"SELEKT\": syntax error") == FaultClass::internal);
  CHECK(sqlite_code_name(SQLITE_CONSTRAINT_UNIQUE) == "SQLITE_CONSTRAINT_UNIQUE");
  CHECK(sqlite_code_name(99999) == "SQLITE_99999");
}

TEST_CASE("migration checksums are SHA-256", "[repo][migrator]") {
  CHECK(Migrator::checksum("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Migrator::checksum("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Migrator::checksum(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(Migrator::checksum("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("unsigned parameters above INT64_MAX are rejected", "[repo][param]") {
  CHECK_THROWS_AS(Param(std::uint64_t{1} << 63), std::out_of_range);
  CHECK(Param(std::uint64_t{42}).as_int64() == 42);
  CHECK(Param(std::optional<int>()).is_null());
  CHECK(Param(std::optional<int>(3)).as_int64() == 3);
}
