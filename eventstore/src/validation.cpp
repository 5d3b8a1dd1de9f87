#include "gamebot/eventstore/validation.hpp"

#include <fmt/format.h>

#include <cstring>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII fast path, eight bytes at a time.
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t length;
    std::uint32_t min;
    std::uint32_t code;
    if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80, code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800, code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, code = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    for (std::size_t i = 1; i < length; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += length;
  }
  return true;
}

namespace {

void validate_name(std::string_view value, std::string_view what, std::size_t max_bytes) {
  if (value.empty()) throw InvalidArgument(fmt::format("{} is empty", what));
  if (value.size() > max_bytes) {
    throw InvalidArgument(
        fmt::format("{} is {} bytes long; the limit is {}", what, value.size(), max_bytes));
  }
  if (value.find('\0') != std::string_view::npos) {
    throw InvalidArgument(fmt::format("{} contains a NUL byte", what));
  }
  if (!is_valid_utf8(value)) throw InvalidArgument(fmt::format("{} is not valid UTF-8", what));
}

}  // namespace

void validate_stream_id(std::string_view id, std::string_view what) {
  validate_name(id, what, kMaxStreamIdBytes);
}

void validate_event_type(std::string_view type, std::string_view what) {
  validate_name(type, what, kMaxEventTypeBytes);
}

}  // namespace gamebot::eventstore
