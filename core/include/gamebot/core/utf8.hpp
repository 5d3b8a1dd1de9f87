#pragma once

#include <string_view>

namespace gamebot {

// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). The one check
// behind every rule that needs UTF-8 (stream ids, event types, names embedded in SQL).
// Thread-safe.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace gamebot
