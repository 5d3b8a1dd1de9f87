// DatabaseUrl as the one parser and redactor: every secret libpq knows is
// redacted in both URL forms, schemes are case-insensitive (memory: included),
// and no error message shows a secret.

#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/database_url.hpp"

using namespace gamebot;
using namespace gamebot::repo;

namespace {

constexpr const char* kSecret = "Kx9SecretValue";

bool libpq_knows(std::string_view keyword) {
  PQconninfoOption* options = PQconndefaults();
  bool found = false;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o)
    found = found || keyword == o->keyword;
  PQconninfoFree(options);
  return found;
}

std::string message_of(const std::string& text) {
  try {
    DatabaseUrl::parse(text);
  } catch (const Error& e) {
    CHECK(e.fault() == FaultClass::configuration);
    return e.message();
  }
  return "(parsed)";
}

void check_redacted(const DatabaseUrl& url) {
  CHECK_THAT(url.redacted(), !Catch::Contains(kSecret));
  CHECK_THAT(url.to_string(), !Catch::Contains(kSecret));
  CHECK_THAT(url.describe_target(), !Catch::Contains(kSecret));
  CHECK(url.scrub(std::string("server said: ") + kSecret) == "server said: ***");
}

}  // namespace

TEST_CASE("sslpassword is redacted in a URL query and in a key=value string", "[repo][url]") {
  const std::string secret = kSecret;
  for (const std::string& text : {"postgresql://u@h/db?sslmode=require&sslpassword=" + secret,
                                  "host=h user=u sslpassword=" + secret + " dbname=db",
                                  "host=h user=u sslpassword='" + secret + "' dbname=db"}) {
    CAPTURE(text);
    const DatabaseUrl url = DatabaseUrl::parse(text);
    CHECK(url.parameter("sslpassword") == secret);  // the driver still gets it
    CHECK_THAT(url.redacted(), Catch::Contains("sslpassword=***"));
    check_redacted(url);
  }
}

TEST_CASE("every secret keyword libpq marks is listed once and redacted in both forms",
          "[repo][url]") {
  // The list is checked against the linked libpq: a keyword it hides ("*") must be ours.
  PQconninfoOption* options = PQconndefaults();
  REQUIRE(options != nullptr);
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    CAPTURE(o->keyword);
    CHECK(is_secret_keyword(o->keyword) == (std::string_view(o->dispchar) == "*"));
  }
  PQconninfoFree(options);

  const std::string secret = kSecret;
  for (std::string_view keyword : kSecretKeywords) {
    const std::string key(keyword);
    CAPTURE(key);
    for (const std::string& text : {"postgresql://u@h/db?" + key + "=" + secret,
                                    "host=h " + key + "='" + secret + "' user=u"}) {
      CAPTURE(text);
      if (!libpq_knows(keyword)) {
        // This libpq would not take it: refused at parse, the value never shown.
        CHECK_THAT(message_of(text), Catch::Contains(key) && !Catch::Contains(kSecret));
        continue;
      }
      const DatabaseUrl url = DatabaseUrl::parse(text);
      CHECK((key == "password" ? url.password() : url.parameter(key).value_or("")) == secret);
      check_redacted(url);
      check_redacted(url.with_parameter(key, secret));
    }
  }
}

TEST_CASE("schemes are case-insensitive and memory: is a URL", "[repo][url]") {
  CHECK(DatabaseUrl::parse("POSTGRES://u@h/db").driver() == Driver::postgres);
  CHECK(DatabaseUrl::parse("PostgreSQL://u@h/db").database() == "db");
  const DatabaseUrl file = DatabaseUrl::parse("SQLite:data/app.db");
  CHECK(file.driver() == Driver::sqlite);
  CHECK(file.sqlite_path() == "data/app.db");
  CHECK(DatabaseUrl::parse("SQLITE::memory:").sqlite_in_memory());
  for (const char* text : {"memory:", "memory://", "MEMORY:", "Memory://"}) {
    CAPTURE(text);
    const DatabaseUrl memory = DatabaseUrl::parse(text);
    CHECK(memory.driver() == Driver::memory);
    CHECK(memory.redacted() == "memory:");
  }
  CHECK_THAT(message_of("memory:some/path"), Catch::Contains("memory:"));
}

TEST_CASE("a malformed URL's error never shows a secret", "[repo][url]") {
  const std::string secret = kSecret;
  for (const std::string& text : {
           // no '@host': the password stands where a port would
           "postgresql://alice:" + secret + "/db",
           // an unencoded '&' cuts the password; the rest has no '='
           "postgresql://u@h/db?password=ab&" + secret,
           "postgresql://u@h/db?sslpassword=ab&" + secret,
           // an unquoted value with a space: the rest is a stray word
           "host=h sslpassword=ab " + secret,
           "postgresql://u@h/db?sslpassword=" + secret + "&bogus=1",
           "POSTGRES://u:" + secret + "@h:0/db",
       }) {
    CAPTURE(text);
    const std::string message = message_of(text);
    CHECK(message != "(parsed)");
    CHECK_THAT(message, !Catch::Contains(kSecret));
  }
}
