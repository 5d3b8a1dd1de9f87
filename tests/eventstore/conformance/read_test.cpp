// Conformance: stream and $all reads, both directions, paging at boundaries, lazy ranges.

#include <catch2/catch.hpp>

#include "conformance.hpp"

namespace gamebot::eventstore::conformance {
namespace {

TEST_CASE("forward stream reads start at an inclusive version and return at most count",
          "[eventstore][read]") {
  Fixture f;
  REQUIRE(f.store.append("ten", 0, events(10)).ok());
  CHECK(event_numbers(f.store.read_stream_forward("ten").events) == range(1, 10));
  CHECK(event_numbers(f.store.read_stream_forward("ten", 1).events) == range(1, 10));
  CHECK(event_numbers(f.store.read_stream_forward("ten", 4, 3).events) == range(4, 6));
  CHECK(event_numbers(f.store.read_stream_forward("ten", 8, 3).events) == range(8, 10));
  CHECK(event_numbers(f.store.read_stream_forward("ten", 10, 5).events) == range(10, 10));
  const auto beyond = f.store.read_stream_forward("ten", 11);
  CHECK(beyond.ok());
  CHECK(beyond.events.empty());
  CHECK(f.store.read_stream_forward("ten", 1, 0).events.empty());
  const auto page = f.store.read_stream_forward("ten", 3, 2);
  CHECK(types(page.events) == std::vector<std::string>{"Event-3", "Event-4"});
}

TEST_CASE("backward stream reads start at an inclusive version or the newest",
          "[eventstore][read]") {
  Fixture f;
  REQUIRE(f.store.append("ten", 0, events(10)).ok());
  CHECK(event_numbers(f.store.read_stream_backward("ten", kLatest, 3).events) ==
        std::vector<StreamVersion>{10, 9, 8});
  CHECK(event_numbers(f.store.read_stream_backward("ten", 5, 10).events) ==
        std::vector<StreamVersion>{5, 4, 3, 2, 1});
  CHECK(event_numbers(f.store.read_stream_backward("ten", 20, 2).events) ==
        std::vector<StreamVersion>{10, 9});
  CHECK(event_numbers(f.store.read_stream_backward("ten", 1, 5).events) ==
        std::vector<StreamVersion>{1});
  CHECK(f.store.read_stream_backward("ten", 0).events.empty());
  CHECK(f.store.read_stream_backward("ten").events.size() == 10);
}

TEST_CASE("reading a stream that does not exist returns stream_not_found", "[eventstore][read]") {
  Fixture f;
  CHECK(f.store.read_stream_forward("missing").status == ReadStatus::stream_not_found);
  CHECK(f.store.read_stream_backward("missing").status == ReadStatus::stream_not_found);
  CHECK(f.store.read_stream_forward("missing").events.empty());
  CHECK_FALSE(f.store.stream_info("missing").has_value());
}

TEST_CASE("$all holds every event in commit order with event_number = global position",
          "[eventstore][read][all]") {
  Fixture f;
  std::vector<std::pair<std::string, StreamVersion>> committed;
  for (int round = 0; round < 4; ++round) {
    for (const char* stream : {"a", "b", "c"}) {
      const int n = (round + 1) % 3 + 1;
      const AppendResult r = f.store.append(stream, ExpectedVersion::any(), events(n, stream));
      REQUIRE(r.ok());
      for (StreamVersion v = r.version - n + 1; v <= r.version; ++v)
        committed.emplace_back(stream, v);
    }
  }
  const auto all = f.store.read_all_forward();
  REQUIRE(all.ok());
  REQUIRE(all.events.size() == committed.size());
  for (std::size_t i = 0; i < committed.size(); ++i) {
    CHECK(all.events[i].global_position == static_cast<GlobalPosition>(i + 1));
    CHECK(all.events[i].event_number == all.events[i].global_position);
    CHECK(all.events[i].stream_id == committed[i].first);
    CHECK(all.events[i].stream_version == committed[i].second);
  }
  const auto backward = f.store.read_all_backward();
  REQUIRE(backward.events.size() == committed.size());
  CHECK(backward.events.front().global_position == static_cast<GlobalPosition>(committed.size()));
  CHECK(backward.events.back().global_position == 1);

  CHECK(positions(f.store.read_all_forward(5, 3).events) == range(5, 7));
  CHECK(positions(f.store.read_all_backward(5, 3).events) == std::vector<GlobalPosition>{5, 4, 3});
  CHECK(f.store.read_all_forward(static_cast<GlobalPosition>(committed.size()) + 1).events.empty());
  CHECK(f.store.head_position() == static_cast<GlobalPosition>(committed.size()));
  // `$all` may also be read through the stream functions.
  CHECK(positions(f.store.read_stream_forward(std::string(kAllStream), 2, 2).events) ==
        range(2, 3));
}

std::vector<StreamVersion> collect(EventRange range) {
  std::vector<StreamVersion> out;
  for (const RecordedEvent& e : range) out.push_back(e.event_number);
  return out;
}

std::vector<StreamVersion> reversed(std::vector<StreamVersion> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

TEST_CASE("lazy ranges page through streams and $all at every page boundary",
          "[eventstore][read][range]") {
  Fixture f;
  REQUIRE(f.store.append("s", 0, events(25)).ok());
  for (std::size_t page : {1, 2, 5, 12, 24, 25, 26, 1000}) {
    INFO("page size " << page);
    CHECK(collect(f.store.stream_forward("s", 0, page)) == range(1, 25));
    CHECK(collect(f.store.stream_backward("s", kLatest, page)) == reversed(range(1, 25)));
    CHECK(collect(f.store.stream_forward("s", 11, page)) == range(11, 25));
    CHECK(collect(f.store.stream_backward("s", 11, page)) == reversed(range(1, 11)));
    CHECK(collect(f.store.all_forward(0, page)) == range(1, 25));
    CHECK(collect(f.store.all_backward(kLatest, page)) == reversed(range(1, 25)));
  }
  EventRange missing = f.store.stream_forward("missing");
  CHECK(missing.begin() == missing.end());
  CHECK(missing.status() == ReadStatus::stream_not_found);
}

TEST_CASE("a lazy range over more events than a page reads them all", "[eventstore][read][range]") {
  Fixture f;
  REQUIRE(f.store.append("long", 0, events(2'500)).ok());
  std::size_t count = 0;
  StreamVersion last = 0;
  for (const RecordedEvent& e : f.store.stream_forward("long")) {
    REQUIRE(e.event_number == last + 1);
    last = e.event_number;
    ++count;
  }
  CHECK(count == 2'500);
  CHECK(collect(f.store.all_backward()).size() == 2'500);
}

TEST_CASE("paging with explicit counts meets the end exactly", "[eventstore][read][range]") {
  Fixture f;
  REQUIRE(f.store.append("p", 0, events(20)).ok());
  std::vector<StreamVersion> seen;
  StreamVersion start = 1;
  for (;;) {
    const auto page = f.store.read_stream_forward("p", start, 5);
    if (page.events.empty()) break;
    CHECK(page.events.size() == 5);
    for (const auto& e : page.events) seen.push_back(e.event_number);
    start = page.events.back().event_number + 1;
  }
  CHECK(seen == range(1, 20));
  CHECK(start == 21);
}

}  // namespace
}  // namespace gamebot::eventstore::conformance
