#pragma once

// The golden file format: one file per type, version and codec holding the
// encoding of every sample, diff-friendly. JSON samples are stored verbatim;
// binary samples as a hex dump (16 bytes a line, with offsets and ASCII).
//
//   # gamebot serializers golden file: guess_processed@v2, codec json, 2 samples
//   # ...
//   --- sample 1 of 2: 123 bytes
//   <the bytes, or their hex dump>
//   --- sample 2 of 2: 98 bytes
//   ...

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/serializers/codec.hpp"

namespace gamebot::serializers::internal {

std::string format_golden(std::string_view tag, Codec codec,
                          const std::vector<std::string>& encodings);

struct GoldenContents {
  bool ok = false;
  std::string error;                   // why the file could not be parsed
  std::vector<std::string> encodings;  // one per sample
};
GoldenContents parse_golden(std::string_view text, Codec codec);

// Line-oriented difference between two encodings ("- " golden, "+ " actual,
// "  " context), at most `max_lines` lines.
std::vector<std::string> describe_difference(std::string_view golden, std::string_view actual,
                                             Codec codec, std::size_t max_lines);

// Hex dump lines of binary bytes ("00000010: 01 02 ...  |..|").
std::vector<std::string> hex_dump(std::string_view bytes);

}  // namespace gamebot::serializers::internal
