#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/serializers/codec.hpp"

namespace gamebot::serializers {

// What went wrong, so callers can branch without parsing messages.
enum class SerializationErrorKind {
  unknown_type,          // no type is registered under the name (see suggestions())
  unregistered_type,     // the C++ type was never registered
  type_mismatch,         // the name is registered for another C++ type than the one asked for
  duplicate_name,        // registration: the name is already taken by another type
  duplicate_type,        // registration: the C++ type is already registered under another name
  invalid_registration,  // registration: bad name, version 0, no samples, broken upcaster chain
  unsupported_version,   // bytes of a version newer than registered, or older without upcasters
  malformed_input,       // the bytes do not decode: truncated, corrupt, wrong shape, trailing data
  unrepresentable,       // the value cannot be written in this codec (NaN in JSON, ...)
  encode_failed,         // the type's own save/serialize function threw
  upcast_failed,         // an upcaster threw
};

// Stable lower-case name ("malformed_input").
std::string_view to_string(SerializationErrorKind kind) noexcept;

// Everything a SerializationError knows; fields that do not apply stay empty.
struct SerializationErrorInfo {
  SerializationErrorKind kind = SerializationErrorKind::malformed_input;  // what failed
  std::string type_name;                   // registered event type name involved, if any
  std::optional<std::uint32_t> version;    // schema version of the bytes or registration
  std::optional<Codec> codec;              // codec in use, if any
  std::optional<std::size_t> byte_offset;  // where decoding stopped (binary), or JSON parse offset
  std::string json_path;                   // where cereal stopped in a JSON document ("$.value0.x")
  std::vector<std::string> suggestions;    // unknown_type: closest registered names, best first
  std::string detail;                      // the underlying cause (cereal's or rapidjson's message)
};

// The one exception type of gamebot::serializers. Fault class is always
// FaultClass::serialization. what() reads like
//   "serialization: cannot decode 'guess_processed' v2 (json) at $.value0.round: ..."
class SerializationError : public gamebot::Error {
 public:
  explicit SerializationError(SerializationErrorInfo info);

  SerializationErrorKind kind() const noexcept { return info_.kind; }
  const std::string& type_name() const noexcept { return info_.type_name; }
  std::optional<std::uint32_t> version() const noexcept { return info_.version; }
  std::optional<Codec> codec() const noexcept { return info_.codec; }
  std::optional<std::size_t> byte_offset() const noexcept { return info_.byte_offset; }
  const std::string& json_path() const noexcept { return info_.json_path; }
  const std::vector<std::string>& suggestions() const noexcept { return info_.suggestions; }
  const std::string& detail() const noexcept { return info_.detail; }
  const SerializationErrorInfo& info() const noexcept { return info_; }

 private:
  SerializationErrorInfo info_;
};

}  // namespace gamebot::serializers
