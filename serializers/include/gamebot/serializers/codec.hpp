#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace gamebot::serializers {

// The two encodings every registered type supports.
//  - json:   cereal's JSONOutputArchive (one value per line, no indentation). Always valid
//            UTF-8 JSON that PostgreSQL jsonb accepts; values JSON cannot carry (NaN,
//            infinities, U+0000 in strings, invalid UTF-8) are rejected at encode time.
//  - binary: cereal's portable binary format (PortableBinaryOutputArchive), read back by
//            BoundedPortableBinaryInputArchive, which checks every length prefix.
enum class Codec : unsigned char { json, binary };

inline constexpr std::array<Codec, 2> all_codecs{Codec::json, Codec::binary};

// Stable lower-case name ("json", "binary"); also the golden file extension.
std::string_view to_string(Codec codec) noexcept;

// Inverse of to_string; nullopt for anything else.
std::optional<Codec> parse_codec(std::string_view name) noexcept;

}  // namespace gamebot::serializers
