// Opening stores from URLs and the backend scheme registry.

#include <catch2/catch.hpp>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore {
namespace {

TEST_CASE("memory: opens a fresh private store each time", "[eventstore][open]") {
  EventStore a = open("memory:");
  EventStore b = open("memory:");
  CHECK(a.backend().scheme() == "memory");
  REQUIRE(a.append("s", 0, EventData{"E", "", "", {}, {}, {}, {}}).ok());
  CHECK(a.head_position() == 1);
  CHECK(b.head_position() == 0);
  CHECK_FALSE(a.options().allow_hard_delete);
  StoreOptions options;
  options.allow_hard_delete = true;
  CHECK(open("memory://", options).options().allow_hard_delete);
}

TEST_CASE("malformed and unknown URLs are configuration errors", "[eventstore][open]") {
  CHECK_THROWS_AS(open("memory"), InvalidArgument);
  CHECK_THROWS_AS(open("memory:some/path"), InvalidArgument);
  try {
    open("mysql://localhost/db");
    FAIL("mysql:// was accepted");
  } catch (const InvalidArgument& error) {
    CHECK(error.fault() == FaultClass::configuration);
    CHECK_THAT(error.what(), Catch::Contains("mysql") && Catch::Contains("memory"));
  }
  StoreOptions bad;
  bad.page_size = 0;
  CHECK_THROWS_AS(open("memory:", bad), InvalidArgument);
}

TEST_CASE("registered schemes open through the same entry point", "[eventstore][open]") {
  std::string seen_url;
  register_backend_scheme("unit-test", [&seen_url](std::string_view url) {
    seen_url = std::string(url);
    return std::make_shared<MemoryBackend>();
  });
  EventStore store = open("unit-test:/some/where?x=1");
  CHECK(seen_url == "unit-test:/some/where?x=1");
  CHECK(store.append("s", ExpectedVersion::any(), EventData{"E", "", "", {}, {}, {}, {}}).ok());
  const auto schemes = registered_backend_schemes();
  CHECK(std::find(schemes.begin(), schemes.end(), "memory") != schemes.end());
  CHECK(std::find(schemes.begin(), schemes.end(), "unit-test") != schemes.end());
  CHECK_THROWS_AS(
      register_backend_scheme("Bad Scheme",
                              [](std::string_view) { return std::make_shared<MemoryBackend>(); }),
      InvalidArgument);
  CHECK_THROWS_AS(register_backend_scheme("null", nullptr), InvalidArgument);
  register_backend_scheme("broken", [](std::string_view) { return std::shared_ptr<Backend>(); });
  try {
    open("broken:");
    FAIL("a factory without a backend was accepted");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::internal);
  }
}

}  // namespace
}  // namespace gamebot::eventstore
