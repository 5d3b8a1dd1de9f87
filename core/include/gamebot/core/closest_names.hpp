#pragma once

// "Did you mean": the one rule for which names are close enough to suggest, used for unknown
// event types and unknown command-line flags alike.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gamebot {

// The candidates close enough to `name` to be a typo or a rename of it: at most a third of the
// longer of the two differs (Levenshtein distance; at least 2 edits allowed). Nearest first
// (ties: in the given order), at most `limit`. Pure; thread-safe.
std::vector<std::string> closest_names(std::string_view name,
                                       std::span<const std::string_view> candidates,
                                       std::size_t limit = 3);

}  // namespace gamebot
