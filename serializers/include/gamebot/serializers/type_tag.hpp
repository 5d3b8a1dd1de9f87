#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gamebot::serializers {

// "<name>@v<version>", e.g. "guess_processed@v2": how golden files are named,
// and a compact way for a store to keep name and version in one column.
struct TypeTag {
  std::string name;
  std::uint32_t version = 0;
};

std::string format_type_tag(std::string_view name, std::uint32_t version);

// Parses "<name>@v<version>" (version >= 1). Throws SerializationError
// (malformed_input) for anything else.
TypeTag parse_type_tag(std::string_view tag);

// True if `name` can be registered: 1..128 characters from [A-Za-z0-9_.-],
// not starting with '.' or '-' (names become file names of golden files).
bool is_valid_type_name(std::string_view name) noexcept;

}  // namespace gamebot::serializers
