#include "gamebot/repo/identifier.hpp"

#include <fmt/format.h>

#include "gamebot/core/error.hpp"
#include "gamebot/core/utf8.hpp"

namespace gamebot::repo {
namespace {

constexpr std::size_t kMaxIdentifierBytes = 63;

[[noreturn]] void refuse(std::string_view why) {
  throw gamebot::Error(FaultClass::configuration, fmt::format("SQL name refused: {}", why));
}

}  // namespace

std::string embed_sql_name(std::string_view name, SqlToken token, SqlPlace place) {
  if (name.empty()) refuse("it is empty");
  if (name.find('\0') != std::string_view::npos) refuse("it contains a NUL byte");
  // Only checked, printable names appear in messages from here on.
  if (!is_valid_utf8(name)) refuse("it is not valid UTF-8");
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
