// The 1,000-case synthetic suite of bench/per_process_suite: each case appends 10 events to a
// stream of its own and reads them back, on the harness's isolated store. Run as one process
// per case (one CTest test each) and as one process for all, to show the harness's share.

#include <string>
#include <vector>

#include "gamebot/harness/catch2.hpp"

namespace {

void append_and_read_back(gamebot::eventstore::EventStore& store) {
  std::vector<gamebot::eventstore::EventData> events(10);
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].type = "synthetic_happened";
    events[i].data = "{\"n\":" + std::to_string(i) + "}";
  }
  store.append("synthetic-1", gamebot::eventstore::ExpectedVersion::no_stream(), events);
  const auto read = store.read_stream_forward("synthetic-1");
  REQUIRE(read.ok());
  REQUIRE(read.events.size() == 10);
}

}  // namespace

#define GAMEBOT_SYNTHETIC_CASE(n)                                                        \
  TEST_CASE_METHOD(gamebot::harness::StoreFixture, "synthetic case " n, "[synthetic]") { \
    append_and_read_back(store());                                                       \
  }
// Ten and a hundred cases per line (clang-format reflows these macros differently each run).
// clang-format off
#define GAMEBOT_SYNTHETIC_10(p) \
  GAMEBOT_SYNTHETIC_CASE(p "0") GAMEBOT_SYNTHETIC_CASE(p "1") GAMEBOT_SYNTHETIC_CASE(p "2") \
  GAMEBOT_SYNTHETIC_CASE(p "3") GAMEBOT_SYNTHETIC_CASE(p "4") GAMEBOT_SYNTHETIC_CASE(p "5") \
  GAMEBOT_SYNTHETIC_CASE(p "6") GAMEBOT_SYNTHETIC_CASE(p "7") GAMEBOT_SYNTHETIC_CASE(p "8") \
  GAMEBOT_SYNTHETIC_CASE(p "9")
#define GAMEBOT_SYNTHETIC_100(p) \
  GAMEBOT_SYNTHETIC_10(p "0") GAMEBOT_SYNTHETIC_10(p "1") GAMEBOT_SYNTHETIC_10(p "2") \
  GAMEBOT_SYNTHETIC_10(p "3") GAMEBOT_SYNTHETIC_10(p "4") GAMEBOT_SYNTHETIC_10(p "5") \
  GAMEBOT_SYNTHETIC_10(p "6") GAMEBOT_SYNTHETIC_10(p "7") GAMEBOT_SYNTHETIC_10(p "8") \
  GAMEBOT_SYNTHETIC_10(p "9")
// clang-format on

GAMEBOT_SYNTHETIC_100("0")
GAMEBOT_SYNTHETIC_100("1")
GAMEBOT_SYNTHETIC_100("2")
GAMEBOT_SYNTHETIC_100("3")
GAMEBOT_SYNTHETIC_100("4")
GAMEBOT_SYNTHETIC_100("5")
GAMEBOT_SYNTHETIC_100("6")
GAMEBOT_SYNTHETIC_100("7")
GAMEBOT_SYNTHETIC_100("8")
GAMEBOT_SYNTHETIC_100("9")
