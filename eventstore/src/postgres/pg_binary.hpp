#pragma once

// PostgreSQL's binary format for one-dimensional arrays, so a whole batch goes
// to the server as a handful of bound parameters (no 65,535-parameter limit,
// no text escaping of bytea). A parameter declared $n::bytea[] (or uuid[],
// text[], timestamptz[], int8[]) and sent in binary format is read by array_recv.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore::postgres_detail {

// Type OIDs of the array elements (pg_type.dat; stable across versions).
inline constexpr std::uint32_t kByteaOid = 17;
inline constexpr std::uint32_t kInt8Oid = 20;
inline constexpr std::uint32_t kTextOid = 25;
inline constexpr std::uint32_t kTimestamptzOid = 1184;
inline constexpr std::uint32_t kUuidOid = 2950;

// Builds one array of exactly `count` elements (add each one, in order). Not
// thread-safe; reuse with reset().
class BinaryArray {
 public:
  BinaryArray() = default;
  BinaryArray(std::uint32_t element_oid, std::size_t count) { reset(element_oid, count); }

  void reset(std::uint32_t element_oid, std::size_t count);
  void add(std::string_view bytes);  // bytea or text element
  void add(const Uuid& id);
  void add(Timestamp time);  // timestamptz: microseconds since 2000-01-01 UTC
  void add_int8(std::int64_t value);
  void add_null();

  // The encoded array; valid until the next change.
  std::span<const std::uint8_t> bytes() const noexcept {
    return {reinterpret_cast<const std::uint8_t*>(buffer_.data()), buffer_.size()};
  }

 private:
  void put32(std::uint32_t value);
  void put64(std::uint64_t value);
  std::string buffer_;
};

// One timestamptz in binary format (big-endian microseconds since
// 2000-01-01 UTC), for a parameter declared $n::timestamptz.
std::array<std::uint8_t, 8> timestamptz_binary(Timestamp time) noexcept;

}  // namespace gamebot::eventstore::postgres_detail
