// The GoogleTest adapter's reading of GoogleTest's failure text, which decides whether a failed
// test counts as an infrastructure failure.
#include <gtest/gtest.h>

#include "gamebot/harness/gtest.hpp"

using gamebot::FaultClass;
using gamebot::harness::gtest::fault_of_failure_message;

TEST(GtestAdapter, ReadsTheFaultClassOfAThrownGamebotError) {
  const gamebot::Error error(FaultClass::connectivity, "server closed the connection", "08006");
  const std::string message = std::string("C++ exception with description \"") + error.what() +
                              "\" thrown in the test body.";
  EXPECT_EQ(fault_of_failure_message(message), FaultClass::connectivity);
  EXPECT_EQ(
      fault_of_failure_message(
          "C++ exception with description \"pool_exhausted: no connection\" thrown in SetUp()."),
      FaultClass::pool_exhausted);
}

TEST(GtestAdapter, AnAssertionFailureHasNoFaultClass) {
  EXPECT_EQ(fault_of_failure_message("Expected equality of these values:\n  1\n  2"), std::nullopt);
}

TEST(GtestAdapter, AnExceptionOfAnotherKindHasNoFaultClass) {
  EXPECT_EQ(
      fault_of_failure_message(
          "C++ exception with description \"connectivityish thing\" thrown in the test body."),
      std::nullopt);
  EXPECT_EQ(fault_of_failure_message("C++ exception with description \"std::bad_alloc\" thrown."),
            std::nullopt);
}
