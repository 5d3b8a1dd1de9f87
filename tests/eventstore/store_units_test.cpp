// Units of the store layer: validation, value types, storage builder, ranges.

#include <catch2/catch.hpp>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore {
namespace {

TEST_CASE("UTF-8 validation accepts well-formed text and rejects the rest",
          "[eventstore][validation]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii that is longer than eight bytes"));
  CHECK(is_valid_utf8("\xC3\xBC"));                // U+00FC
  CHECK(is_valid_utf8("\xE2\x82\xAC"));            // U+20AC
  CHECK(is_valid_utf8("\xF0\x9F\x8E\xB2"));        // U+1F3B2
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));        // U+10FFFF
  CHECK_FALSE(is_valid_utf8("\x80"));              // lone continuation
  CHECK_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  CHECK_FALSE(is_valid_utf8("\xED\xB0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));
  CHECK_FALSE(is_valid_utf8("abcdefgh\xE2\x82"));  // truncated after the fast path
  CHECK_NOTHROW(validate_stream_id(std::string(kMaxStreamIdBytes, 'a')));
  CHECK_THROWS_AS(validate_stream_id(std::string(kMaxStreamIdBytes + 1, 'a')), InvalidArgument);
  CHECK_THROWS_WITH(validate_stream_id("", "snapshot source id"),
                    Catch::Contains("snapshot source id is empty"));
}

TEST_CASE("expected versions convert from numbers and name their kind", "[eventstore][types]") {
  ExpectedVersion three = 3;
  CHECK(three.kind() == ExpectedVersion::Kind::exact);
  CHECK(three.version() == 3);
  CHECK(ExpectedVersion(0) == ExpectedVersion::exact(0));
  CHECK(ExpectedVersion::any().kind() == ExpectedVersion::Kind::any);
  CHECK(ExpectedVersion::no_stream() != ExpectedVersion::exact(0));
  CHECK(to_string(WriteStatus::wrong_expected_version) == "wrong_expected_version");
  CHECK(to_string(WriteStatus::cannot_append_to_all) == "cannot_append_to_all");
  CHECK(to_string(ReadStatus::stream_deleted) == "stream_deleted");
  WriteResult result;
  CHECK(result.ok());
  result.status = WriteStatus::stream_exists;
  CHECK_FALSE(result.ok());
}

TEST_CASE("EventStorageBuilder keeps copies that outlive the builder", "[eventstore][backend]") {
  RecordedEvent event;
  {
    EventStorageBuilder builder;
    std::string source = "temporary type name";
    event.type = builder.keep(source);
    const std::string big(40'000, 'b');
    event.data = builder.keep(big);
    event.metadata = builder.keep("");
    source.assign(source.size(), '#');
    event.storage = builder.storage();
  }
  CHECK(event.type == "temporary type name");
  CHECK(event.data == std::string(40'000, 'b'));
  CHECK(event.metadata.empty());
}

TEST_CASE("an event range is single pass", "[eventstore][range]") {
  EventStore store = open("memory:");
  EventRange range = store.stream_forward("s");
  (void)range.begin();
  CHECK_THROWS_AS(range.begin(), InvalidArgument);
}

TEST_CASE("an empty subscription handle refuses use", "[eventstore][subscription]") {
  Subscription empty;
  CHECK_FALSE(empty);
  CHECK_THROWS_AS(empty.next(std::chrono::milliseconds(1)), InvalidArgument);
  CHECK_FALSE(empty.persistent());
  CHECK_FALSE(empty.checkpoint().has_value());
  empty.cancel();
}

TEST_CASE("persistent subscription options are validated", "[eventstore][subscription]") {
  EventStore store = open("memory:");
  PersistentSubscriptionOptions options;
  options.concurrency_limit = 0;
  CHECK_THROWS_AS(store.subscribe_persistent("n", "s", options), InvalidArgument);
  options = {};
  options.max_in_flight = 0;
  CHECK_THROWS_AS(store.subscribe_persistent("n", "s", options), InvalidArgument);
  options = {};
  options.start_from = StartFrom::position(-1);
  CHECK_THROWS_AS(store.subscribe_persistent("n", "s", options), InvalidArgument);
  CHECK_THROWS_AS(store.subscribe_persistent("", "s"), InvalidArgument);
  CHECK_THROWS_AS(
      store.list_streams(StreamListQuery{.prefix = "", .after_sequence = 0, .limit = 0}),
      InvalidArgument);
}

TEST_CASE("the change notifier times out without a change and returns at once after one",
          "[eventstore][notifier]") {
  ChangeNotifier notifier;
  const auto seen = notifier.sequence();
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(notifier.wait_for_change(seen, start + std::chrono::milliseconds(30)));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(30));
  notifier.notify();
  CHECK(notifier.sequence() != seen);
  CHECK(notifier.wait_for_change(seen, std::chrono::steady_clock::now() + std::chrono::hours(1)));
}

}  // namespace
}  // namespace gamebot::eventstore
