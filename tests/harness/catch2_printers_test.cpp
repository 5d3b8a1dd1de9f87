// What a failing Catch2 assertion on the event store's values shows: the StringMakers that
// gamebot/harness/catch2.hpp brings in.

#include <catch2/catch.hpp>
#include <string>

#include "gamebot/core/uuid.hpp"
#include "gamebot/harness/catch2.hpp"

namespace es = gamebot::eventstore;
using Catch::Detail::stringify;

namespace {

es::RecordedEvent recorded(std::string_view type, std::string_view data) {
  es::RecordedEvent event;
  event.event_number = 3;
  event.event_id = gamebot::Uuid::parse("0190c2a4-7b1e-7c3d-8e4f-123456789abc").value();
  event.stream_id = "game-1";
  event.stream_version = 3;
  event.global_position = 17;
  event.type = type;
  event.data = data;
  return event;
}

}  // namespace

TEST_CASE("catch2: store statuses print by name", "[harness][printers]") {
  CHECK(stringify(es::WriteStatus::wrong_expected_version) == "wrong_expected_version");
  CHECK(Catch::StringMaker<es::ReadStatus>::convert(es::ReadStatus::stream_deleted) ==
        "stream_deleted");
  CHECK(stringify(es::ExpectedVersion::no_stream()) == "no_stream");
  CHECK(stringify(es::ExpectedVersion::exact(4)) == "exact 4");
}

TEST_CASE("catch2: a write result prints its status, version and positions",
          "[harness][printers]") {
  es::WriteResult conflict;
  conflict.status = es::WriteStatus::wrong_expected_version;
  conflict.version = 2;
  CHECK(stringify(conflict) == "{status: wrong_expected_version, version: 2}");
  es::WriteResult appended;
  appended.version = 1;
  appended.first_position = 4;
  appended.last_position = 5;
  CHECK(Catch::StringMaker<es::WriteResult>::convert(appended) ==
        "{status: ok, version: 1, positions: 4..5}");
}

TEST_CASE("catch2: a read result lists its events, payloads escaped", "[harness][printers]") {
  es::ReadResult read;
  read.events.push_back(recorded("player_joined", "{\"g\":\"1\"}\n\x01"));
  CHECK(stringify(read) ==
        "{status: ok, events: 1 [{number: 3, type: player_joined, stream: game-1, version: 3, "
        "position: 17, id: 0190c2a4-7b1e-7c3d-8e4f-123456789abc, "
        "data: \"{\\\"g\\\":\\\"1\\\"}\\x0a\\x01\"}]}");
  es::ReadResult missing;
  missing.status = es::ReadStatus::stream_not_found;
  CHECK(stringify(missing) == "{status: stream_not_found, events: 0}");
}

TEST_CASE("catch2: a long payload and a long read are cut", "[harness][printers]") {
  const std::string payload(100, 'x');
  es::EventData data;
  data.type = "big";
  data.data = payload;
  CHECK(stringify(data) == "{type: big, data: \"" + std::string(64, 'x') + "\"... (100 bytes)}");
  es::ReadResult read;
  for (int i = 0; i < 7; ++i) read.events.push_back(recorded("t", ""));
  const std::string text = stringify(read);
  CHECK_THAT(text, Catch::StartsWith("{status: ok, events: 7 [{number: 3, type: t,") &&
                       Catch::EndsWith(", ... 2 more]}"));
}
