#pragma once

// GoogleTest printers for the event store's result, status and event types, so a failed
// EXPECT_EQ on them (and ::testing::PrintToString) shows the values instead of raw bytes:
//
//   EXPECT_EQ(result.status, WriteStatus::ok);  // result.status: wrong_expected_version
//
// GoogleTest finds PrintTo by argument-dependent lookup, hence the types' own namespace. Every
// translation unit that prints these types must see this header (gtest.hpp includes it), or
// GoogleTest prints them differently there. The text comes from store_descriptions.hpp.

#include <ostream>

#include "gamebot/harness/store_descriptions.hpp"

namespace gamebot::eventstore {

inline void PrintTo(WriteStatus status, std::ostream* out) {
  *out << harness::describe(status);
}
inline void PrintTo(ReadStatus status, std::ostream* out) {
  *out << harness::describe(status);
}
inline void PrintTo(const ExpectedVersion& expected, std::ostream* out) {
  *out << harness::describe(expected);
}
inline void PrintTo(const WriteResult& result, std::ostream* out) {
  *out << harness::describe(result);
}
inline void PrintTo(const ReadResult& result, std::ostream* out) {
  *out << harness::describe(result);
}
inline void PrintTo(const RecordedEvent& event, std::ostream* out) {
  *out << harness::describe(event);
}
inline void PrintTo(const EventData& event, std::ostream* out) {
  *out << harness::describe(event);
}

}  // namespace gamebot::eventstore
