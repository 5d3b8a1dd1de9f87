#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gamebot::repo::internal {

// "2024-01-02 03:04:05.123456+00" for microseconds since the Unix epoch (PostgreSQL input).
std::string format_timestamp_utc(std::int64_t unix_micros);
// Parses ISO 8601 / SQLite text timestamps: "YYYY-MM-DD[
// T]HH:MM[:SS[.ffffff]][Z|+HH[:MM]|-HH[:MM]]" (no zone = UTC) into microseconds since the Unix
// epoch.
std::optional<std::int64_t> parse_timestamp(std::string_view text);
// "12:00:01.123" local wall-clock time for diagnostics.
std::string format_wall_clock(std::int64_t unix_micros);

}  // namespace gamebot::repo::internal
