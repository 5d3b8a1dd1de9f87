// A user's harness-based GoogleTest binary, run as a child process by run_exit_test.cpp. The
// DISABLED_ tests are the failing runs, selected with --gtest_also_run_disabled_tests.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "gamebot/harness/gtest.hpp"
#include "gamebot/harness/wait.hpp"
#include "gamebot/repo/logging.hpp"

namespace {

using gamebot::eventstore::ExpectedVersion;

gamebot::eventstore::EventData joined(const std::string& player) {
  gamebot::eventstore::EventData event;
  event.type = "player_joined";
  event.data = "{\"player\":\"" + player + "\"}";
  return event;
}

class ChildStoreTest : public gamebot::harness::gtest::StoreTest {};

TEST_F(ChildStoreTest, AppendsAndWaits) {
  store().append("game-1", ExpectedVersion::any(), joined("ana"));
  EXPECT_EQ(gamebot::harness::assert_receive_event(store(), "player_joined").stream_id, "game-1");
}

TEST_F(ChildStoreTest, DISABLED_WaitsForAnEventThatNeverComes) {
  store().append("game-1", ExpectedVersion::any(), joined("ana"));
  gamebot::harness::assert_receive_event(store(), "player_left", {}, std::chrono::milliseconds(50));
}

TEST_F(ChildStoreTest, DISABLED_LogsThenFails) {
  store().append("logged", ExpectedVersion::any(), joined("ana"));
  for (int i = 0; i < 60; ++i) gamebot::repo::logger()->warn("child log line {}", i);
  const int answer = 1;
  EXPECT_EQ(answer, 2);
}

TEST(ChildPlain, DISABLED_ManyFailures) {
  for (int i = 0; i < 201; ++i) EXPECT_LT(i, 0);
}

}  // namespace

int main(int argc, char** argv) {
  return gamebot::harness::gtest::run_all_tests(argc, argv, {});
}
