#include "gamebot/serializers/error.hpp"

#include <fmt/format.h>

namespace gamebot::serializers {
namespace {

std::string describe(const SerializationErrorInfo& info) {
  std::string subject;
  if (!info.type_name.empty()) {
    subject = fmt::format("'{}'", info.type_name);
    if (info.version) subject += fmt::format(" v{}", *info.version);
  }
  if (info.codec) {
    subject += fmt::format("{}({})", subject.empty() ? "" : " ", to_string(*info.codec));
  }
  std::string where;
  if (!info.json_path.empty()) where += fmt::format(" at {}", info.json_path);
  if (info.byte_offset) where += fmt::format(" at byte {}", *info.byte_offset);

  std::string text;
  switch (info.kind) {
    case SerializationErrorKind::unknown_type:
      text = fmt::format("unknown event type {}", subject);
      if (!info.suggestions.empty()) {
        text += fmt::format("; closest registered: {}", fmt::join(info.suggestions, ", "));
      }
      break;
    case SerializationErrorKind::unregistered_type:
      text = fmt::format("C++ type {} is not registered", subject);
      break;
    case SerializationErrorKind::type_mismatch:
      text = fmt::format("type mismatch for {}", subject);
      break;
    case SerializationErrorKind::duplicate_name:
    case SerializationErrorKind::duplicate_type:
    case SerializationErrorKind::invalid_registration:
      text = fmt::format("cannot register {}", subject);
      break;
    case SerializationErrorKind::unsupported_version:
      text = fmt::format("unsupported version of {}", subject);
      break;
    case SerializationErrorKind::malformed_input:
      text = fmt::format("cannot decode {}{}", subject, where);
      break;
    case SerializationErrorKind::unrepresentable:
      text = fmt::format("cannot encode {}{}", subject, where);
      break;
    case SerializationErrorKind::encode_failed:
      text = fmt::format("cannot encode {}", subject);
      break;
    case SerializationErrorKind::upcast_failed:
      text = fmt::format("upcasting {} failed", subject);
      break;
  }
  if (!info.detail.empty()) text += fmt::format(": {}", info.detail);
  return text;
}

}  // namespace

std::string_view to_string(SerializationErrorKind kind) noexcept {
  switch (kind) {
    case SerializationErrorKind::unknown_type:
      return "unknown_type";
    case SerializationErrorKind::unregistered_type:
      return "unregistered_type";
    case SerializationErrorKind::type_mismatch:
      return "type_mismatch";
    case SerializationErrorKind::duplicate_name:
      return "duplicate_name";
    case SerializationErrorKind::duplicate_type:
      return "duplicate_type";
    case SerializationErrorKind::invalid_registration:
      return "invalid_registration";
    case SerializationErrorKind::unsupported_version:
      return "unsupported_version";
    case SerializationErrorKind::malformed_input:
      return "malformed_input";
    case SerializationErrorKind::unrepresentable:
      return "unrepresentable";
    case SerializationErrorKind::encode_failed:
      return "encode_failed";
    case SerializationErrorKind::upcast_failed:
      return "upcast_failed";
  }
  return "malformed_input";
}

SerializationError::SerializationError(SerializationErrorInfo info)
    : Error(FaultClass::serialization, describe(info)), info_(std::move(info)) {}

}  // namespace gamebot::serializers
