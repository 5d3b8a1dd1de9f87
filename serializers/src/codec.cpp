#include "gamebot/serializers/codec.hpp"

namespace gamebot::serializers {

std::string_view to_string(Codec codec) noexcept {
  switch (codec) {
    case Codec::json:
      return "json";
    case Codec::binary:
      return "binary";
  }
  return "binary";
}

std::optional<Codec> parse_codec(std::string_view name) noexcept {
  if (name == "json") return Codec::json;
  if (name == "binary") return Codec::binary;
  return std::nullopt;
}

}  // namespace gamebot::serializers
