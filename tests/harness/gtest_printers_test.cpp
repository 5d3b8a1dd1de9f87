// What a failing GoogleTest assertion on the event store's values shows: the printers that
// gamebot/harness/gtest.hpp brings in.

#include <gtest/gtest.h>

#include <string>

#include "gamebot/core/uuid.hpp"
#include "gamebot/harness/gtest.hpp"

namespace es = gamebot::eventstore;
using ::testing::PrintToString;

TEST(GtestPrinters, StatusesPrintByName) {
  EXPECT_EQ(PrintToString(es::WriteStatus::stream_deleted), "stream_deleted");
  EXPECT_EQ(PrintToString(es::ReadStatus::stream_not_found), "stream_not_found");
  EXPECT_EQ(PrintToString(es::ExpectedVersion::exact(2)), "exact 2");
}

TEST(GtestPrinters, ResultsAndEventsPrintTheirFields) {
  es::WriteResult duplicate;
  duplicate.status = es::WriteStatus::duplicate_event_id;
  duplicate.event_id = gamebot::Uuid::parse("0190c2a4-7b1e-7c3d-8e4f-123456789abc").value();
  EXPECT_EQ(PrintToString(duplicate),
            "{status: duplicate_event_id, version: 0, "
            "event_id: 0190c2a4-7b1e-7c3d-8e4f-123456789abc}");

  es::RecordedEvent event;
  event.event_id = *duplicate.event_id;
  event.stream_id = "game-1";
  event.global_position = 9;
  event.type = "player_joined";
  event.data = "{}";
  event.metadata = "m";
  es::ReadResult read;
  read.events.push_back(event);
  EXPECT_EQ(PrintToString(read),
            "{status: ok, events: 1 [{number: 0, type: player_joined, stream: game-1, version: 0, "
            "position: 9, id: 0190c2a4-7b1e-7c3d-8e4f-123456789abc, data: \"{}\", "
            "metadata: \"m\"}]}");

  es::EventData data;
  data.type = "player_joined";
  data.data = "{}";
  data.correlation_id = *duplicate.event_id;
  EXPECT_EQ(PrintToString(data),
            "{type: player_joined, data: \"{}\", "
            "correlation_id: 0190c2a4-7b1e-7c3d-8e4f-123456789abc}");
}
