#pragma once

#include <string>
#include <string_view>

namespace gamebot::harness::detail {

// Appends `text` as a JSON string literal: quotes, backslashes and control
// characters escaped; invalid UTF-8 replaced by U+FFFD so the output always parses.
void append_json_string(std::string& out, std::string_view text);

// Appends a finite number (non-finite values become null).
void append_json_number(std::string& out, double value);

}  // namespace gamebot::harness::detail
