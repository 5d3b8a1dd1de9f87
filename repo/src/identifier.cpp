#include "gamebot/repo/identifier.hpp"

#include <fmt/format.h>

#include "gamebot/core/error.hpp"

namespace gamebot::repo {
namespace {

constexpr std::size_t kMaxIdentifierBytes = 63;

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    char32_t code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
      code = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
      code = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
      code = lead & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0u) != 0x80u) return false;
      code = (code << 6) | (next & 0x3Fu);
    }
    // Overlong forms, surrogates and code points above U+10FFFF.
    if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

[[noreturn]] void refuse(std::string_view why) {
  throw gamebot::Error(FaultClass::configuration, fmt::format("SQL name refused: {}", why));
}

}  // namespace

std::string embed_sql_name(std::string_view name, SqlToken token, SqlPlace place) {
  if (name.empty()) refuse("it is empty");
  if (name.find('\0') != std::string_view::npos) refuse("it contains a NUL byte");
  // Only checked, printable names appear in messages from here on.
  if (!valid_utf8(name)) refuse("it is not valid UTF-8");
  if (token == SqlToken::identifier && name.size() > kMaxIdentifierBytes) {
    refuse(fmt::format("'{}' is longer than {} bytes", name, kMaxIdentifierBytes));
  }
  if (token == SqlToken::literal && name.find('\\') != std::string_view::npos) {
    refuse(
        fmt::format("'{}' contains a backslash, which a string literal cannot hold safely", name));
  }
  if (place == SqlPlace::dollar_quoted_body && name.find('$') != std::string_view::npos) {
    refuse(fmt::format("'{}' contains '$', which could end a dollar-quoted function body", name));
  }
  const char quote = token == SqlToken::identifier ? '"' : '\'';
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back(quote);
  for (char c : name) {
    if (c == quote) out.push_back(quote);
    out.push_back(c);
  }
  out.push_back(quote);
  return out;
}

std::string quote_identifier(std::string_view name) {
  return embed_sql_name(name, SqlToken::identifier);
}

std::string quote_qualified(std::string_view schema, std::string_view name) {
  if (schema.empty()) return quote_identifier(name);
  return quote_identifier(schema) + "." + quote_identifier(name);
}

}  // namespace gamebot::repo
