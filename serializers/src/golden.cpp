#include "gamebot/serializers/internal/golden.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace gamebot::serializers::internal {
namespace {

constexpr std::size_t kBytesPerLine = 16;
constexpr std::string_view kSampleMarker = "--- sample ";

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the hex bytes of one dump line into `out`; false if it is not one.
bool parse_dump_line(std::string_view line, std::string& out) {
  const auto colon = line.find(": ");
  if (colon == std::string_view::npos) return false;
  std::size_t i = colon + 2;
  while (i + 1 < line.size() && hex_value(line[i]) >= 0 && hex_value(line[i + 1]) >= 0) {
    out.push_back(static_cast<char>(hex_value(line[i]) * 16 + hex_value(line[i + 1])));
    i += 2;
    if (i < line.size() && line[i] == ' ') {
      ++i;
      if (i < line.size() && line[i] == ' ') break;
    }
  }
  return true;
}

}  // namespace

std::vector<std::string> hex_dump(std::string_view bytes) {
  std::vector<std::string> lines;
  for (std::size_t offset = 0; offset < bytes.size(); offset += kBytesPerLine) {
    const std::size_t count = std::min(kBytesPerLine, bytes.size() - offset);
    std::string hex;
    std::string ascii;
    for (std::size_t i = 0; i < count; ++i) {
      const auto byte = static_cast<unsigned char>(bytes[offset + i]);
      if (i != 0) hex += ' ';
      hex += fmt::format("{:02x}", byte);
      ascii += (byte >= 0x20 && byte < 0x7f) ? static_cast<char>(byte) : '.';
    }
    lines.push_back(fmt::format("{:08x}: {:<47}  |{}|", offset, hex, ascii));
  }
  return lines;
}

std::string format_golden(std::string_view tag, Codec codec,
                          const std::vector<std::string>& encodings) {
  std::string text = fmt::format(
      "# gamebot serializers golden file: {}, codec {}, {} sample{}\n"
      "# Written by the conformance suite. A difference means the encoding changed: bump the\n"
      "# version (and register an upcaster), or regenerate on purpose with "
      "GAMEBOT_UPDATE_GOLDEN=1.\n",
      tag, to_string(codec), encodings.size(), encodings.size() == 1 ? "" : "s");
  for (std::size_t i = 0; i < encodings.size(); ++i) {
    text += fmt::format("{}{} of {}: {} bytes\n", kSampleMarker, i + 1, encodings.size(),
                        encodings[i].size());
    if (codec == Codec::json) {
      text += encodings[i];
      text += '\n';
    } else {
      for (const std::string& line : hex_dump(encodings[i])) {
        text += line;
        text += '\n';
      }
    }
  }
  return text;
}

GoldenContents parse_golden(std::string_view text, Codec codec) {
  GoldenContents contents;
  std::size_t position = 0;
  auto next_line = [&]() -> std::string_view {
    const auto end = text.find('\n', position);
    const std::string_view line = text.substr(
        position, end == std::string_view::npos ? std::string_view::npos : end - position);
    position = end == std::string_view::npos ? text.size() : end + 1;
    return line;
  };
  auto fail = [&](std::string why) {
    contents.ok = false;
    contents.error = std::move(why);
    contents.encodings.clear();
    return contents;
  };
  while (position < text.size() && text[position] == '#') next_line();
  while (position < text.size()) {
    const std::string_view header = next_line();
    if (header.empty()) continue;
    if (!header.starts_with(kSampleMarker)) {
      return fail(fmt::format("expected \"{}...\", found \"{}\"", kSampleMarker, header));
    }
    const auto colon = header.rfind(": ");
    std::size_t size = 0;
    const char* begin = header.data() + (colon == std::string_view::npos ? 0 : colon + 2);
    const char* end = header.data() + header.size();
    const auto [ptr, ec] = std::from_chars(begin, end, size);
    if (colon == std::string_view::npos || ec != std::errc() ||
        std::string_view(ptr, static_cast<std::size_t>(end - ptr)) != " bytes") {
      return fail(fmt::format("bad sample header \"{}\"", header));
    }
    std::string bytes;
    if (codec == Codec::json) {
      if (text.size() - position < size + 1 || text[position + size] != '\n') {
        return fail(fmt::format("sample {} is shorter than its {} bytes",
                                contents.encodings.size() + 1, size));
      }
      bytes.assign(text.substr(position, size));
      position += size + 1;
    } else {
      const std::size_t lines = (size + kBytesPerLine - 1) / kBytesPerLine;
      for (std::size_t i = 0; i < lines; ++i) {
        if (position >= text.size() || !parse_dump_line(next_line(), bytes)) {
          return fail(fmt::format("sample {}: bad hex dump line", contents.encodings.size() + 1));
        }
      }
      if (bytes.size() != size) {
        return fail(fmt::format("sample {}: the hex dump holds {} bytes, the header says {}",
                                contents.encodings.size() + 1, bytes.size(), size));
      }
    }
    contents.encodings.push_back(std::move(bytes));
  }
  contents.ok = true;
  return contents;
}

std::vector<std::string> describe_difference(std::string_view golden, std::string_view actual,
                                             Codec codec, std::size_t max_lines) {
  std::vector<std::string> golden_storage;
  std::vector<std::string> actual_storage;
  std::vector<std::string_view> a;
  std::vector<std::string_view> b;
  if (codec == Codec::json) {
    a = split_lines(golden);
    b = split_lines(actual);
  } else {
    golden_storage = hex_dump(golden);
    actual_storage = hex_dump(actual);
    a.assign(golden_storage.begin(), golden_storage.end());
    b.assign(actual_storage.begin(), actual_storage.end());
  }
  std::size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  std::vector<std::string> out;
  auto add = [&](std::string line) {
    if (out.size() < max_lines) out.push_back(std::move(line));
  };
  constexpr std::size_t kContext = 2;
  for (std::size_t i = prefix > kContext ? prefix - kContext : 0; i < prefix; ++i) {
    add(fmt::format("  {}", a[i]));
  }
  for (std::size_t i = prefix; i < a.size() - suffix; ++i) add(fmt::format("- {}", a[i]));
  for (std::size_t i = prefix; i < b.size() - suffix; ++i) add(fmt::format("+ {}", b[i]));
  for (std::size_t i = a.size() - suffix; i < a.size() && i < a.size() - suffix + kContext; ++i) {
    add(fmt::format("  {}", a[i]));
  }
  return out;
}

}  // namespace gamebot::serializers::internal
