#include "gamebot/eventstore/validation.hpp"

#include <fmt/format.h>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

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
