#include "pg_binary.hpp"

#include <chrono>
#include <cstring>

namespace gamebot::eventstore::postgres_detail {

namespace {
// 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in Unix microseconds.
constexpr std::int64_t kPostgresEpochMicros = 946'684'800'000'000LL;
constexpr std::size_t kHasNullOffset = 4;
}  // namespace

void BinaryArray::reset(std::uint32_t element_oid, std::size_t count) {
  buffer_.clear();
  put32(count == 0 ? 0 : 1);  // dimensions
  put32(0);                   // has nulls (set by add_null)
  put32(element_oid);
  if (count > 0) {
    put32(static_cast<std::uint32_t>(count));  // elements in the dimension
    put32(1);                                  // lower bound
  }
}

void BinaryArray::add(std::string_view bytes) {
  put32(static_cast<std::uint32_t>(bytes.size()));
  buffer_.append(bytes);
}

void BinaryArray::add(const Uuid& id) {
  put32(16);
  buffer_.append(reinterpret_cast<const char*>(id.bytes().data()), 16);
}

void BinaryArray::add(Timestamp time) {
  put32(8);
  put64(static_cast<std::uint64_t>(time.time_since_epoch().count() - kPostgresEpochMicros));
}

void BinaryArray::add_int8(std::int64_t value) {
  put32(8);
  put64(static_cast<std::uint64_t>(value));
}

void BinaryArray::add_null() {
  put32(0xFFFFFFFFu);  // length -1
  buffer_[kHasNullOffset + 3] = 1;
}

std::array<std::uint8_t, 8> timestamptz_binary(Timestamp time) noexcept {
  const auto value =
      static_cast<std::uint64_t>(time.time_since_epoch().count() - kPostgresEpochMicros);
  std::array<std::uint8_t, 8> bytes{};
  for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
  return bytes;
}

void BinaryArray::put32(std::uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  buffer_.append(bytes, 4);
}

void BinaryArray::put64(std::uint64_t value) {
  put32(static_cast<std::uint32_t>(value >> 32));
  put32(static_cast<std::uint32_t>(value));
}

}  // namespace gamebot::eventstore::postgres_detail
