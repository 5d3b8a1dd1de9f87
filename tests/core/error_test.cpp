#include "gamebot/core/error.hpp"

#include <catch2/catch.hpp>

using gamebot::Error;
using gamebot::FaultClass;

TEST_CASE("an error's what() starts with its fault class and code", "[core][error]") {
  Error plain(FaultClass::schema, "table events missing");
  CHECK(std::string(plain.what()) == "schema: table events missing");
  Error coded(FaultClass::authentication, "password rejected", "28P01");
  CHECK(std::string(coded.what()) == "authentication [28P01]: password rejected");
  CHECK(coded.code() == "28P01");
  CHECK(coded.message() == "password rejected");
}

TEST_CASE("only connectivity, timeout and pool_exhausted are retryable", "[core][error]") {
  for (auto fault : {FaultClass::configuration, FaultClass::authentication,
                     FaultClass::provisioning, FaultClass::schema, FaultClass::serialization,
                     FaultClass::concurrency, FaultClass::integrity, FaultClass::internal}) {
    CHECK_FALSE(gamebot::is_retryable(fault));
  }
  CHECK(gamebot::is_retryable(FaultClass::connectivity));
  CHECK(gamebot::is_retryable(FaultClass::timeout));
  CHECK(gamebot::is_retryable(FaultClass::pool_exhausted));
  CHECK(gamebot::to_string(FaultClass::pool_exhausted) == "pool_exhausted");
}
