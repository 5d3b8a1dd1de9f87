#include "gamebot/serializers/type_tag.hpp"

#include <fmt/format.h>

#include <charconv>

#include "gamebot/serializers/error.hpp"

namespace gamebot::serializers {

std::string format_type_tag(std::string_view name, std::uint32_t version) {
  return fmt::format("{}@v{}", name, version);
}

TypeTag parse_type_tag(std::string_view tag) {
  const auto at = tag.rfind("@v");
  std::uint32_t version = 0;
  if (at != std::string_view::npos && at > 0) {
    const char* begin = tag.data() + at + 2;
    const char* end = tag.data() + tag.size();
    const auto [ptr, ec] = std::from_chars(begin, end, version);
    if (ec == std::errc() && ptr == end && begin != end && *begin != '0' && version >= 1 &&
        is_valid_type_name(tag.substr(0, at))) {
      return TypeTag{std::string(tag.substr(0, at)), version};
    }
  }
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::malformed_input;
  info.type_name = std::string(tag);
  info.detail = "expected a type tag \"<name>@v<version>\" such as \"guess_processed@v2\"";
  throw SerializationError(std::move(info));
}

bool is_valid_type_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace gamebot::serializers
