#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/uuid.hpp"

namespace gamebot::repo {

// Timestamps are system_clock time points; databases keep microseconds (PostgreSQL
// timestamptz; SQLite INTEGER microseconds since the Unix epoch).
using Timestamp = std::chrono::system_clock::time_point;
// Byte strings (BLOB / bytea) read from rows.
using Bytes = std::vector<std::uint8_t>;

// One bound statement parameter. A non-owning view: text and bytes point at the caller's
// memory, which must outlive the call that binds it (it does for the argument list of
// Connection::execute/query). Values are sent separately from the SQL text, never spliced in.
// Placeholders are $1..$n on both drivers (SQLite also accepts ?NNN and ?).
class Param {
 public:
  enum class Type : std::uint8_t { null, boolean, int64, float64, text, bytes, uuid, timestamp };

  Param() noexcept : type_(Type::null) {}
  Param(std::nullptr_t) noexcept : type_(Type::null) {}
  Param(std::nullopt_t) noexcept : type_(Type::null) {}
  Param(bool value) noexcept : type_(Type::boolean) { int_ = value ? 1 : 0; }
  template <std::signed_integral T>
  Param(T value) noexcept : type_(Type::int64) {
    int_ = static_cast<std::int64_t>(value);
  }
  // Unsigned values above INT64_MAX throw std::out_of_range (no silent wrap).
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) Param(T value) : type_(Type::int64) {
    int_ = checked_unsigned(static_cast<std::uint64_t>(value));
  }
  Param(double value) noexcept : type_(Type::float64) { double_ = value; }
  Param(float value) noexcept : type_(Type::float64) { double_ = value; }
  Param(std::string_view text) noexcept : type_(Type::text) { set_view(text.data(), text.size()); }
  Param(const std::string& text) noexcept : Param(std::string_view(text)) {}
  Param(const char* text) noexcept : Param(std::string_view(text)) {}
  Param(std::span<const std::uint8_t> bytes) noexcept : type_(Type::bytes) {
    set_view(bytes.data(), bytes.size());
  }
  Param(std::span<const std::byte> bytes) noexcept : type_(Type::bytes) {
    set_view(bytes.data(), bytes.size());
  }
  Param(const Bytes& bytes) noexcept : Param(std::span<const std::uint8_t>(bytes)) {}
  Param(const std::vector<std::byte>& bytes) noexcept : Param(std::span<const std::byte>(bytes)) {}
  Param(const Uuid& id) noexcept : type_(Type::uuid) { uuid_ = id.bytes(); }
  Param(Timestamp time) noexcept;
  template <typename T>
  Param(const std::optional<T>& value) : type_(Type::null) {
    if (value.has_value()) *this = Param(value.value());
  }

  Type type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == Type::null; }
  bool as_bool() const noexcept { return int_ != 0; }
  std::int64_t as_int64() const noexcept { return int_; }
  double as_double() const noexcept { return double_; }
  std::string_view as_text() const noexcept {
    return {static_cast<const char*>(view_.data), view_.size};
  }
  std::span<const std::uint8_t> as_bytes() const noexcept {
    return {static_cast<const std::uint8_t*>(view_.data), view_.size};
  }
  Uuid as_uuid() const noexcept { return Uuid(uuid_); }
  // Microseconds since the Unix epoch (floor).
  std::int64_t as_unix_micros() const noexcept { return int_; }
  // "int64", "text", ... for messages.
  std::string_view type_name() const noexcept;

 private:
  struct View {
    const void* data;
    std::size_t size;
  };
  static std::int64_t checked_unsigned(std::uint64_t value);
  void set_view(const void* data, std::size_t size) noexcept { view_ = View{data, size}; }

  Type type_;
  union {
    std::int64_t int_ = 0;
    double double_;
    View view_;
    Uuid::Bytes uuid_;
  };
};

}  // namespace gamebot::repo
