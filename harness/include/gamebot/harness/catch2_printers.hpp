#pragma once

// Catch2 v2 StringMakers for the event store's result, status and event types, so an assertion
// on them expands to the values instead of "{?}" or a bare enum number:
//
//   CHECK(result.status == WriteStatus::ok);  // wrong_expected_version == ok
//   CAPTURE(result);                          // result := {status: ..., version: 1}
//
// (`CHECK(result.ok())` is a bool and still expands to `false`: compare the status, or
// CAPTURE the result.) Included by catch2.hpp; the text comes from store_descriptions.hpp.

#include <catch2/catch.hpp>
#include <string>

#include "gamebot/harness/store_descriptions.hpp"

namespace gamebot::harness::detail {

// One StringMaker shape for every described type.
template <class T>
struct DescribedStringMaker {
  static std::string convert(const T& value) { return describe(value); }
};

}  // namespace gamebot::harness::detail

namespace Catch {

template <>
struct StringMaker<gamebot::eventstore::WriteStatus>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::WriteStatus> {};
template <>
struct StringMaker<gamebot::eventstore::ReadStatus>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::ReadStatus> {};
template <>
struct StringMaker<gamebot::eventstore::ExpectedVersion>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::ExpectedVersion> {};
template <>
struct StringMaker<gamebot::eventstore::WriteResult>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::WriteResult> {};
template <>
struct StringMaker<gamebot::eventstore::ReadResult>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::ReadResult> {};
template <>
struct StringMaker<gamebot::eventstore::RecordedEvent>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::RecordedEvent> {};
template <>
struct StringMaker<gamebot::eventstore::EventData>
    : gamebot::harness::detail::DescribedStringMaker<gamebot::eventstore::EventData> {};

}  // namespace Catch
