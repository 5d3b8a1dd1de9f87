#pragma once

#include <string>
#include <string_view>

namespace gamebot::repo::internal {

// Lower-case hex SHA-256 (FIPS 180-4) of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace gamebot::repo::internal
