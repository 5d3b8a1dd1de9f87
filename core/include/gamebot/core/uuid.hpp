#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace gamebot {

// A 128-bit UUID value. Regular type: copyable, ordered, hashable.
class Uuid {
 public:
  using Bytes = std::array<std::uint8_t, 16>;

  constexpr Uuid() noexcept = default;  // the nil UUID
  constexpr explicit Uuid(const Bytes& bytes) noexcept : bytes_(bytes) {}

  // A time-ordered version 7 UUID (RFC 9562): 48-bit Unix milliseconds, then a
  // counter and random bits, so ids generated in one process sort by creation
  // and index inserts stay local. Thread-safe.
  static Uuid v7();
  // A random version 4 UUID. Thread-safe.
  static Uuid v4();
  // Parses the canonical 8-4-4-4-12 hex form (either case); nullopt otherwise.
  static std::optional<Uuid> parse(std::string_view text) noexcept;

  const Bytes& bytes() const noexcept { return bytes_; }
  bool is_nil() const noexcept;
  // Lower-case canonical form.
  std::string to_string() const;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads the defaulted <=>.
  friend auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  Bytes bytes_{};
};

}  // namespace gamebot

template <>
struct std::hash<gamebot::Uuid> {
  std::size_t operator()(const gamebot::Uuid& id) const noexcept;
};
